// The IOTLB: translations of present pages, tagged by domain ID and, for
// guest translations, PASID.
//
// An entry is keyed by (domain, PASID, page size, IOVA page number), so a
// page of any size is one entry. Host (v1) translations have the PASID
// kHostTables. Lookups try each page size the cache holds, 4 KiB
// first. It never holds a not-present result: with NpCache=0 the guest does
// not invalidate after it maps, so a cached miss would be stale at once.
//
// The STREAMING prefetcher fills it too; such an entry is marked until its
// first use, so that the statistics can say what became of each prefetch.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

#include "sharded_cache.hh"
#include "statistics.hh"

namespace ioguard {

// The PASID tag of translations through the host (v1) tables; guest
// translations carry their PASID (0..2^20-1).
constexpr uint32_t kHostTables = ~uint32_t{0};

struct IotlbTag {
    uint16_t domain_id;
    uint8_t page_shift;     // log2(page size)
    uint32_t pasid;         // kHostTables, or the guest translation's PASID
    uint64_t page_number;   // iova >> page_shift

    bool operator==(const IotlbTag &o) const
    {
        return domain_id == o.domain_id && page_shift == o.page_shift &&
               pasid == o.pasid && page_number == o.page_number;
    }
};

struct IotlbTagHash {
    size_t operator()(const IotlbTag &t) const
    {
        uint64_t h = (t.page_number ^ uint64_t(t.page_shift) << 56 ^
                      uint64_t(t.pasid) << 24) *
                     0x9e3779b97f4a7c15ULL;
        return size_t((h >> 32) ^ h ^ (uint64_t(t.domain_id) << 7));
    }
};

struct IotlbEntry {
    uint64_t page_base;     // output address of the page
    uint8_t page_shift;
    bool read;
    bool write;
    // Guest translations: the guest's leaf has D set. A write through a
    // clean entry walks again, to set it. (Host translations: always.)
    bool dirty;
    bool streaming;         // the leaf PTE's STREAMING bit
    bool prefetched;        // put here by the prefetcher and not used yet
    uint16_t prefetched_for; // the requester it was prefetched for
};

class Iotlb {
public:
    explicit Iotlb(Statistics &stats) : stats_(stats) {}

    uint64_t epoch() const { return cache_.epoch(); }

    // On a hit, prefetched says that this is the first use of a prefetched
    // entry (the entry itself is now an ordinary one). The hit of an
    // ordinary entry takes no lock.
    std::optional<IotlbEntry> lookup(uint16_t domain, uint64_t iova,
                                     uint32_t pasid = kHostTables)
    {
        std::optional<IotlbEntry> e;    // one result (see ShardedCache)
        uint64_t shifts = shifts_present_.load(std::memory_order_acquire);
        while (shifts) {
            const unsigned shift = __builtin_ctzll(shifts);
            shifts &= shifts - 1;
            const IotlbTag tag{domain, uint8_t(shift), pasid, iova >> shift};
            cache_.lookup(tag, e);
            if (!e) {
                continue;
            }
            if (e->prefetched) {
                // Of several users of a prefetched entry, one is the first.
                const auto before = cache_.update(tag, [](IotlbEntry &entry) {
                    entry.prefetched = false;
                });
                e->prefetched = before && before->prefetched;
            }
            break;
        }
        return e;
    }

    // The entry of the page holding iova, without using it.
    std::optional<IotlbEntry> peek(uint16_t domain, uint64_t iova,
                                   uint32_t pasid = kHostTables) const
    {
        uint64_t shifts = shifts_present_.load(std::memory_order_acquire);
        for (; shifts; shifts &= shifts - 1) {
            const unsigned shift = __builtin_ctzll(shifts);
            if (auto e = cache_.lookup(
                    {domain, uint8_t(shift), pasid, iova >> shift})) {
                return e;
            }
        }
        return std::nullopt;
    }

    void insert(uint16_t domain, uint64_t iova, const IotlbEntry &e,
                uint64_t filled_at, uint32_t pasid = kHostTables)
    {
        shifts_present_.fetch_or(uint64_t{1} << e.page_shift,
                                 std::memory_order_acq_rel);
        if (pasid != kHostTables) {
            guest_entries_.store(true, std::memory_order_release);
        }
        cache_.insert({domain, e.page_shift, pasid, iova >> e.page_shift}, e,
                      filled_at, [this](const IotlbEntry &old) {
                          count_unused(old, &RequesterCounters::
                                                prefetch_evicted_unused);
                      });
    }

    // INVALIDATE_IOMMU_PAGES with GN=0: domain's host translations that
    // overlap the IOVA range [first, last], and all its guest translations
    // (made through the host tables at guest physical addresses that the
    // range may hold; the guest virtual addresses they are keyed by cannot
    // tell).
    void invalidate_iommu_pages(uint16_t domain, uint64_t first, uint64_t last)
    {
        if (guest_entries_.load(std::memory_order_acquire)) {
            cache_.erase_if([&](const IotlbTag &tag, const IotlbEntry &e) {
                const bool hit = tag.domain_id == domain &&
                                 tag.pasid != kHostTables;
                if (hit) {
                    count_invalidated(e);
                }
                return hit;
            });
        }
        invalidate_range(domain, kHostTables, first, last);
    }

    // INVALIDATE_IOMMU_PAGES with GN=1: domain's guest translations for
    // pasid that overlap [first, last].
    void invalidate_guest_pages(uint16_t domain, uint32_t pasid,
                                uint64_t first, uint64_t last)
    {
        invalidate_range(domain, pasid, first, last);
    }

    // INVALIDATE_IOMMU_ALL (and the IOMMU being switched on or off).
    void invalidate_iommu_all()
    {
        cache_.erase_if([this](const IotlbTag &, const IotlbEntry &e) {
            count_invalidated(e);
            return true;
        });
        shifts_present_.store(uint64_t{1} << 12, std::memory_order_release);
        guest_entries_.store(false, std::memory_order_release);
    }

    size_t size() const { return cache_.size(); }

private:
    // The pages of (domain, pasid) that overlap [first, last]. A small range
    // erases the pages it covers one by one (strict mode invalidates on
    // every unmap); a large one scans.
    void invalidate_range(uint16_t domain, uint32_t pasid, uint64_t first,
                          uint64_t last)
    {
        constexpr uint64_t kMaxPointErases = 64;
        const uint64_t shifts = shifts_present_.load(std::memory_order_acquire);
        uint64_t probes = 0;
        for (uint64_t s = shifts; s && probes <= kMaxPointErases; s &= s - 1) {
            const unsigned shift = __builtin_ctzll(s);
            probes += (last >> shift) - (first >> shift) + 1;
        }
        if (probes > kMaxPointErases) {
            cache_.erase_if([&](const IotlbTag &tag, const IotlbEntry &e) {
                const uint64_t base = tag.page_number << e.page_shift;
                const uint64_t end = base + ((uint64_t{1} << e.page_shift) - 1);
                const bool hit = tag.domain_id == domain &&
                                 tag.pasid == pasid && base <= last &&
                                 first <= end;
                if (hit) {
                    count_invalidated(e);
                }
                return hit;
            });
            return;
        }
        for (uint64_t s = shifts; s; s &= s - 1) {
            const unsigned shift = __builtin_ctzll(s);
            for (uint64_t n = first >> shift; n <= last >> shift; n++) {
                cache_.erase({domain, uint8_t(shift), pasid, n},
                             [this](const IotlbEntry &e) {
                                 count_invalidated(e);
                             });
            }
        }
    }

    void count_unused(const IotlbEntry &e, RequesterCounter counter)
    {
        if (e.prefetched) {
            bump(stats_.requester(e.prefetched_for), counter);
        }
    }
    void count_invalidated(const IotlbEntry &e)
    {
        count_unused(e, &RequesterCounters::prefetch_invalidated_unused);
    }

    Statistics &stats_;
    ShardedCache<IotlbTag, IotlbEntry, IotlbTagHash> cache_;
    // Page sizes (as bit positions) that entries may have: lookups try them.
    std::atomic<uint64_t> shifts_present_{uint64_t{1} << 12};
    // Guest translations may be present (until INVALIDATE_IOMMU_ALL).
    std::atomic<bool> guest_entries_{false};
};

} // namespace ioguard
