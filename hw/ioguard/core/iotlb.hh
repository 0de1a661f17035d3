// The IOTLB: translations of present pages, tagged by domain ID.
//
// An entry is keyed by (domain, page size, IOVA page number), so a page of
// any size is one entry. Lookups try each page size the cache holds, 4 KiB
// first. It never holds a not-present result: with NpCache=0 the guest does
// not invalidate after it maps, so a cached miss would be stale at once.
#pragma once

#include <atomic>
#include <cstdint>

#include "sharded_cache.hh"

namespace ioguard {

struct IotlbTag {
    uint16_t domain_id;
    uint8_t page_shift;     // log2(page size)
    uint64_t page_number;   // iova >> page_shift

    bool operator==(const IotlbTag &o) const
    {
        return domain_id == o.domain_id && page_shift == o.page_shift &&
               page_number == o.page_number;
    }
};

struct IotlbTagHash {
    size_t operator()(const IotlbTag &t) const
    {
        uint64_t h = (t.page_number ^ uint64_t(t.page_shift) << 56) *
                     0x9e3779b97f4a7c15ULL;
        return size_t((h >> 32) ^ h ^ (uint64_t(t.domain_id) << 7));
    }
};

struct IotlbEntry {
    uint64_t page_base;     // output address of the page
    uint8_t page_shift;
    bool read;
    bool write;
};

class Iotlb {
public:
    uint64_t epoch() const { return cache_.epoch(); }

    bool lookup(uint16_t domain, uint64_t iova, IotlbEntry &out) const
    {
        uint64_t shifts = shifts_present_.load(std::memory_order_acquire);
        while (shifts) {
            const unsigned shift = __builtin_ctzll(shifts);
            shifts &= shifts - 1;
            if (auto e = cache_.lookup({domain, uint8_t(shift), iova >> shift})) {
                out = *e;
                return true;
            }
        }
        return false;
    }

    void insert(uint16_t domain, uint64_t iova, const IotlbEntry &e,
                uint64_t filled_at)
    {
        shifts_present_.fetch_or(uint64_t{1} << e.page_shift,
                                 std::memory_order_acq_rel);
        cache_.insert({domain, e.page_shift, iova >> e.page_shift}, e,
                      filled_at);
    }

    // INVALIDATE_IOMMU_PAGES: every page of domain that overlaps the IOVA
    // range [first, last]. A small range erases the pages it covers one by
    // one (strict mode invalidates on every unmap); a large one scans.
    void invalidate_iommu_pages(uint16_t domain, uint64_t first, uint64_t last)
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
                return tag.domain_id == domain && base <= last && first <= end;
            });
            return;
        }
        for (uint64_t s = shifts; s; s &= s - 1) {
            const unsigned shift = __builtin_ctzll(s);
            for (uint64_t n = first >> shift; n <= last >> shift; n++) {
                cache_.erase({domain, uint8_t(shift), n});
            }
        }
    }

    // INVALIDATE_IOMMU_ALL (and the IOMMU being switched on or off).
    void invalidate_iommu_all()
    {
        cache_.clear();
        shifts_present_.store(uint64_t{1} << 12, std::memory_order_release);
    }

    size_t size() const { return cache_.size(); }

private:
    ShardedCache<IotlbTag, IotlbEntry, IotlbTagHash> cache_;
    // Page sizes (as bit positions) that entries may have: lookups try them.
    std::atomic<uint64_t> shifts_present_{uint64_t{1} << 12};
};

} // namespace ioguard
