// The page directory cache: for a domain and a 2 MiB-aligned IOVA region,
// the level-1 table its walk ends in and the permissions granted above it,
// so that a walk of a neighbouring page reads one entry instead of Mode.
// INVALIDATE_IOMMU_PAGES with PDE=1 drops the regions it overlaps.
#pragma once

#include <cstdint>
#include <optional>

#include "sharded_cache.hh"

namespace ioguard {

struct DirectoryTag {
    uint16_t domain_id;
    uint64_t region;        // iova >> 21

    bool operator==(const DirectoryTag &o) const
    {
        return domain_id == o.domain_id && region == o.region;
    }
};

struct DirectoryTagHash {
    size_t operator()(const DirectoryTag &t) const
    {
        const uint64_t h = t.region * 0x9e3779b97f4a7c15ULL;
        return size_t((h >> 32) ^ h ^ (uint64_t(t.domain_id) << 5));
    }
};

struct DirectoryEntry {
    // Tags beyond the domain: a DTE with another root or Mode walks anew.
    uint64_t root;
    unsigned mode;
    // Outputs
    uint64_t l1_table;
    bool read;
    bool write;
};

class PageDirectoryCache {
public:
    uint64_t epoch() const { return cache_.epoch(); }

    std::optional<DirectoryEntry> lookup(uint16_t domain, uint64_t root,
                                         unsigned mode, uint64_t iova) const
    {
        auto e = cache_.lookup({domain, iova >> 21});
        if (e && e->root == root && e->mode == mode) {
            return e;
        }
        return std::nullopt;
    }

    void insert(uint16_t domain, uint64_t iova, const DirectoryEntry &e,
                uint64_t filled_at)
    {
        cache_.insert({domain, iova >> 21}, e, filled_at);
    }

    // INVALIDATE_IOMMU_PAGES with PDE=1 over [first, last].
    void invalidate_iommu_pages(uint16_t domain, uint64_t first, uint64_t last)
    {
        constexpr uint64_t kMaxPointErases = 16;
        if ((last >> 21) - (first >> 21) < kMaxPointErases) {
            for (uint64_t r = first >> 21; r <= last >> 21; r++) {
                cache_.erase({domain, r});
            }
            return;
        }
        cache_.erase_if([&](const DirectoryTag &tag, const DirectoryEntry &) {
            return tag.domain_id == domain && tag.region >= first >> 21 &&
                   tag.region <= last >> 21;
        });
    }

    // INVALIDATE_IOMMU_ALL
    void invalidate_iommu_all() { cache_.clear(); }

private:
    ShardedCache<DirectoryTag, DirectoryEntry, DirectoryTagHash, 64, 8> cache_;
};

} // namespace ioguard
