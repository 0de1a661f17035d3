// One entry of an AMD-Vi v1 (host) page table, decoded: the one place that
// knows the format, for the translation walk (page_walker), the mapping
// walker behind query-ioguard-mappings and anything else that reads one.
#pragma once

#include <cstdint>

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

// The entry pte read from a table of level `level` (1..6).
V1Pte decode_v1_pte(uint64_t pte, unsigned level);

} // namespace ioguard
