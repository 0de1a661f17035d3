// What the monitor and the MAP notifiers are told: the ranges (or page
// entries) of one requester's tables, collected.
#pragma once

#include <vector>

#include "fake_guest.hh"

namespace ioguard_test {

struct Walk {
    std::vector<IoguardMapping> ranges;
    IoguardMappingWalk result{};
};

inline void collect_range(const IoguardMapping *r, void *o)
{
    static_cast<Walk *>(o)->ranges.push_back(*r);
}

// Coalesced ranges; pasid -1: requests without a PASID.
inline Walk mappings(Machine &m, uint16_t devid, uint64_t start = 0,
                     uint64_t max_ranges = 1000, uint64_t max_tables = 1000,
                     int32_t pasid = -1, bool privileged = false)
{
    Walk w;
    ioguard_iommu_walk_mappings(m.iommu, devid, pasid, privileged, start,
                                max_ranges, max_tables, collect_range, &w,
                                &w.result);
    return w;
}

// By page-table entry, as MAP notifier users are told.
inline Walk page_entries(Machine &m, uint16_t devid, uint64_t start = 0,
                         uint64_t end = ~uint64_t{0},
                         uint64_t max_tables = 1000)
{
    Walk w;
    ioguard_iommu_walk_page_entries(m.iommu, devid, start, end, 1000,
                                    max_tables, collect_range, &w, &w.result);
    return w;
}

} // namespace ioguard_test
