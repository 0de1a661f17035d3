// "What can this device reach?": every present leaf of a v1 page table
// (or of a PASID's v2 tables, walk_guest_mappings),
// read afresh from guest memory (no IOTLB, no cache), coalesced into
// ranges that are contiguous in both IOVA and guest-physical space and
// have the same permissions. Behind query-ioguard-mappings.
//
// It decides exactly as the translation walk does (page_walker.cc): level
// skipping, large pages, permissions ANDed down the walk and with the
// DTE's IR/IW; entries the walk would refuse (reserved bits or encodings)
// and tables not in RAM reach nothing and are counted as malformed.
//
// Entries that begin above end are not visited.
//
// By page-table entry (coalesce = false), each present leaf entry is one
// range, whole even where it begins below start: an aligned power of two,
// as QEMU's MAP notifier users (vfio) are told of mappings.
//
// The guest controls the tables, and they may share subtables so that a
// full enumeration would never end: the walk reads at most max_tables
// tables and returns at most max_ranges ranges, then says where to go on.
#pragma once

#include <cstdint>
#include <functional>

#include "device_table.hh"
#include "host.hh"
#include "hw/ioguard/iommu-engine.h"

namespace ioguard {

struct MappingWalk {
    bool truncated = false;     // stopped early: go on from next_iova
    uint64_t next_iova = 0;
    uint64_t tables_read = 0;
    uint64_t malformed = 0;     // entries the translation walk would refuse
};

using MappingSink = std::function<void(const IoguardMapping &)>;

MappingWalk walk_mappings(Host &host, uint64_t root, unsigned mode,
                          bool dte_read, bool dte_write, uint64_t start,
                          uint64_t end, uint64_t max_ranges,
                          uint64_t max_tables, bool coalesce,
                          const MappingSink &sink);

// The same of one PASID's guest (v2) tables under dte, as requests of that
// PASID see them (user: U/S must let user requests in; requests without a
// PASID are user requests), through the host tables if the DTE has them.
// A guest page the host tables map with smaller pages is cut into those.
MappingWalk walk_guest_mappings(Host &host, const DeviceTableEntry &dte,
                                uint32_t pasid, bool user, uint64_t start,
                                uint64_t end, uint64_t max_ranges,
                                uint64_t max_tables, bool coalesce,
                                const MappingSink &sink);

} // namespace ioguard
