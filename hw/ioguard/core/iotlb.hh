// The IOTLB: translations of present pages, tagged by domain ID.
//
// An entry is keyed by (domain, 4 KiB IOVA page) but remembers the size of
// the page it came from, so invalidation matches on the whole page. It never
// holds a not-present result: with NpCache=0 the guest does not invalidate
// after it maps, so a cached miss would be stale at once.
#pragma once

#include <cstdint>

#include "sharded_cache.hh"

namespace ioguard {

struct IotlbTag {
    uint16_t domain_id;
    uint64_t iova_page;     // iova >> 12

    bool operator==(const IotlbTag &o) const
    {
        return domain_id == o.domain_id && iova_page == o.iova_page;
    }
};

struct IotlbTagHash {
    size_t operator()(const IotlbTag &t) const
    {
        uint64_t h = t.iova_page * 0x9e3779b97f4a7c15ULL;
        return size_t(h ^ (h >> 29) ^ (uint64_t(t.domain_id) << 17));
    }
};

struct IotlbEntry {
    uint64_t iova_base;     // first IOVA of the page
    uint64_t page_base;     // output address of the page
    uint64_t page_size;
    bool read;
    bool write;
};

class Iotlb {
public:
    uint64_t epoch() const { return cache_.epoch(); }

    bool lookup(uint16_t domain, uint64_t iova, IotlbEntry &out) const
    {
        auto e = cache_.lookup({domain, iova >> 12});
        if (!e) {
            return false;
        }
        out = *e;
        return true;
    }

    void insert(uint16_t domain, uint64_t iova, const IotlbEntry &e,
                uint64_t filled_at)
    {
        cache_.insert({domain, iova >> 12}, e, filled_at);
    }

    // INVALIDATE_IOMMU_PAGES: every page of domain that overlaps the
    // IOVA range [first, last].
    void invalidate_iommu_pages(uint16_t domain, uint64_t first, uint64_t last)
    {
        cache_.erase_if([&](const IotlbTag &tag, const IotlbEntry &e) {
            return tag.domain_id == domain && e.iova_base <= last &&
                   first <= e.iova_base + (e.page_size - 1);
        });
    }

    // INVALIDATE_IOMMU_ALL (and the IOMMU being switched on or off).
    void invalidate_iommu_all() { cache_.clear(); }

    size_t size() const { return cache_.size(); }

private:
    ShardedCache<IotlbTag, IotlbEntry, IotlbTagHash> cache_;
};

} // namespace ioguard
