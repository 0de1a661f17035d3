#include "v1_pte.hh"


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

} // namespace ioguard
