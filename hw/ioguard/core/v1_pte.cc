#include "v1_pte.hh"

#include "hw/ioguard/amd-vi-regs.h"

namespace ioguard {

// Size of a NextLevel=7 page: 2^(n+1), n = the lowest 0 bit of the address
// field at or above bit 12. All ones (no 0 bit) is not a valid encoding.
uint64_t large_page_size(uint64_t pte)
{
    const uint64_t addr_bits = (pte & IOMMU_PTE_ADDR_MASK) >> 12;
    const uint64_t ones = ~addr_bits & ((uint64_t{1} << 40) - 1);
    if (ones == 0) {
        return 0;
    }
    const unsigned n = 12 + __builtin_ctzll(ones);
    return n + 1 >= 64 ? 0 : uint64_t{1} << (n + 1);
}

V1Pte decode_v1_pte(uint64_t pte, unsigned level)
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
