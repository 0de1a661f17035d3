// One entry of an AMD-Vi v1 (host) page table, decoded: the one place that
// knows the format, for the translation walk (page_walker), the mapping
// walker behind query-ioguard-mappings and anything else that reads one.
#pragma once

#include <cstdint>

#include "hw/ioguard/amd-vi-regs.h"

namespace ioguard {

// Size in bytes that one entry of a level-L table maps by default.
constexpr uint64_t level_entry_size(unsigned level)
{
    return uint64_t{1} << (12 + 9 * (level - 1));
}

// Size of the page a NextLevel=7 PTE maps, or 0 for an invalid encoding.
uint64_t large_page_size(uint64_t pte);

struct V1Pte {
    enum class Kind {
        NotPresent,  // PR=0: nothing else in it counts
        Reserved,    // reserved bits, a NextLevel not below the table's
                     // level, or a large page of an impossible size
        Page,        // a leaf: NextLevel 0 (default size) or 7 (large)
        Table,       // a PDE: the next table is at level next_level
    };
    Kind kind = Kind::NotPresent;
    bool read = false;          // IR
    bool write = false;         // IW
    // Page: the page's output base (aligned to page_size), its size and
    // the IOGUARD_PTE_STREAMING bit. Table: the next table's address.
    uint64_t address = 0;
    uint64_t page_size = 0;
    bool streaming = false;
    unsigned next_level = 0;    // Table: below level, may skip levels
};

// The entry pte read from a table of level `level` (1..6). (Here, to be
// inlined: every level of every walk decodes one.)
inline V1Pte decode_v1_pte(uint64_t pte, unsigned level)
{
    V1Pte e;
    if (!(pte & IOMMU_PTE_PR)) {
        return e;
    }
    e.kind = V1Pte::Kind::Reserved;
    if (pte & IOMMU_PTE_RESERVED) {
        return e;
    }
    e.read = pte & IOMMU_PTE_IR;
    e.write = pte & IOMMU_PTE_IW;
    const unsigned next = (pte >> IOMMU_PTE_NEXT_LEVEL_SHIFT) &
                          IOMMU_PTE_NEXT_LEVEL_MASK;
    if (next == 0 || next == IOMMU_PTE_NEXT_LEVEL_LARGE) {
        uint64_t size = level_entry_size(level);
        if (next == IOMMU_PTE_NEXT_LEVEL_LARGE) {
            size = large_page_size(pte);
            // Replicated entries of one page: more than one entry of this
            // table, at most the whole table.
            if (size <= level_entry_size(level) ||
                (level < 6 && size > level_entry_size(level + 1))) {
                return e;
            }
        }
        e.kind = V1Pte::Kind::Page;
        e.page_size = size;
        e.address = (pte & IOMMU_PTE_ADDR_MASK) & ~(size - 1);
        e.streaming = pte & IOGUARD_PTE_STREAMING;
        return e;
    }
    if (next >= level) {
        return e;
    }
    e.kind = V1Pte::Kind::Table;
    e.next_level = next;
    e.address = pte & IOMMU_PTE_ADDR_MASK;
    return e;
}

} // namespace ioguard
