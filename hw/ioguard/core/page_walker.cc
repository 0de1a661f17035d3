#include "page_walker.hh"

#include "bits.hh"
#include "hw/ioguard/amd-vi-regs.h"

namespace ioguard {

namespace {

unsigned index_shift(unsigned level) { return 12 + 9 * (level - 1); }

WalkResult walk(Host &host, uint64_t table, unsigned level, bool read,
                bool write, uint64_t iova)
{
    WalkResult r;
    r.read = read;
    r.write = write;
    while (level >= 1) {
        const uint64_t index = (iova >> index_shift(level)) & 0x1ff;
        const uint64_t entry_addr = table + index * 8;
        uint8_t buf[8];
        r.entries_read++;
        if (!host.read_ram(entry_addr, buf, sizeof(buf))) {
            r.status = WalkResult::Status::TableReadError;
            r.error_address = entry_addr;
            return r;
        }
        const uint64_t pte = load_le64(buf);
        if (!(pte & IOMMU_PTE_PR)) {
            r.status = WalkResult::Status::NotPresent;
            return r;
        }
        if (pte & IOMMU_PTE_RESERVED) {
            r.status = WalkResult::Status::Reserved;
            return r;
        }
        r.read = r.read && (pte & IOMMU_PTE_IR);
        r.write = r.write && (pte & IOMMU_PTE_IW);

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
                    r.status = WalkResult::Status::Reserved;
                    return r;
                }
            }
            r.page_size = size;
            r.streaming = pte & IOGUARD_PTE_STREAMING;
            r.page_base = (pte & IOMMU_PTE_ADDR_MASK) & ~(size - 1);
            r.status = WalkResult::Status::Ok;
            return r;
        }
        if (next >= level) {
            r.status = WalkResult::Status::Reserved;
            return r;
        }
        // Skipped levels translate as if their index were 0; an IOVA that
        // uses them is outside what the tables describe.
        if (next < level - 1 &&
            bits(iova, index_shift(level) - 1, index_shift(next + 1)) != 0) {
            r.status = WalkResult::Status::OutOfRange;
            return r;
        }
        table = pte & IOMMU_PTE_ADDR_MASK;
        if (level == 2 && next == 1) {
            r.l1_table = table;
            r.l1_read = r.read;
            r.l1_write = r.write;
        }
        level = next;
    }
    r.status = WalkResult::Status::NotPresent;
    return r;
}

} // namespace

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

WalkResult walk_v1(Host &host, uint64_t root, unsigned mode, uint64_t iova)
{
    if (mode < 6 && (iova >> index_shift(mode + 1)) != 0) {
        WalkResult r;
        r.status = WalkResult::Status::OutOfRange;
        return r;
    }
    return walk(host, root, mode, true, true, iova);
}

WalkResult walk_v1_from_l1(Host &host, uint64_t l1_table, bool read,
                           bool write, uint64_t iova)
{
    return walk(host, l1_table, 1, read, write, iova);
}

} // namespace ioguard
