// What the guest's tables grant, worked out the slow, obvious way from the
// AMD I/O Virtualization spec (2.2.3, "I/O Page Tables for Host
// Translations"), independently of the engine's walker: the fuzz targets
// check every translation the engine grants against it. It reads RAM
// directly and knows nothing of caches.
#pragma once

#include <cstdint>
#include <vector>

#include "fuzz_machine.hh"

namespace ioguard_fuzz {

struct Grant {
    uint64_t address;   // where the IOVA's byte is in guest-physical space
    bool read;
    bool write;
};

// Bits of the IOVA that index the table at `level` start here.
constexpr unsigned level_shift(unsigned level) { return 3 + 9 * level; }

// The size of a NextLevel 7 page: twice the weight of the lowest zero bit
// of the address field (0 if there is none low enough).
inline uint64_t large_page_size(uint64_t pte)
{
    const uint64_t address = pte & 0x000ffffffffff000ULL;
    unsigned ones = 0;
    while (ones < 40 && (address >> (12 + ones) & 1)) {
        ones++;
    }
    if (ones == 40 || 12 + ones + 1 >= 64) {
        return 0;
    }
    return uint64_t{1} << (12 + ones + 1);
}

// A NextLevel 7 page is meant to be written into every entry it spans;
// when the guest does not, an IOTLB may hold the page from any one of them
// (real hardware does too). The grants such a page in `table` (at `level`,
// reached with the permissions read and write) makes for iova.
inline void large_pages_spanning(const FuzzMachine &m, uint64_t table,
                                 unsigned level, uint64_t iova, bool read,
                                 bool write, std::vector<Grant> &out)
{
    for (uint64_t index = 0; index < 512; index++) {
        const uint64_t entry_at = table + index * 8;
        if (entry_at + 8 > kRamSize) {
            return;
        }
        const uint64_t pte = m.r64(entry_at);
        const uint64_t size = large_page_size(pte);
        if (!(pte & 1) || (pte >> 9 & 7) != 7 || size == 0) {
            continue;
        }
        // The IOVA this entry translates, and whether its page spans iova.
        const unsigned shift = level_shift(level);
        const uint64_t at = (iova & ~(uint64_t{511} << shift)) | index << shift;
        if ((at & ~(size - 1)) == (iova & ~(size - 1))) {
            out.push_back(Grant{(pte & 0x000ffffffffff000ULL & ~(size - 1)) |
                                    (iova & (size - 1)),
                                read && (pte >> 61 & 1),
                                write && (pte >> 62 & 1)});
        }
    }
}

// What a v1 page table rooted at `table`, `level` levels deep, grants for
// iova, given the permissions granted above it: the entry on iova's path
// first, then (if all) large pages that span iova from other entries.
inline std::vector<Grant> reference_walk(const FuzzMachine &m, uint64_t table,
                                         unsigned level, uint64_t iova,
                                         bool read, bool write, bool all)
{
    std::vector<Grant> grants;
    for (;;) {
        if (all) {
            large_pages_spanning(m, table, level, iova, read, write, grants);
        }
        const uint64_t entry_at = table + ((iova >> level_shift(level)) & 511) * 8;
        if (entry_at + 8 > kRamSize) {
            return grants;                  // a table outside RAM
        }
        const uint64_t pte = m.r64(entry_at);
        if (!(pte & 1)) {
            return grants;                  // not present
        }
        read = read && (pte >> 61 & 1);
        write = write && (pte >> 62 & 1);
        const unsigned next = pte >> 9 & 7;
        const uint64_t address = pte & 0x000ffffffffff000ULL;
        if (next == 0 || next == 7) {
            // A page: the size of this level's entries, or a large page.
            const uint64_t size = next == 7 ? large_page_size(pte)
                                            : uint64_t{1} << level_shift(level);
            if (size) {
                grants.insert(grants.begin(),
                              Grant{(address & ~(size - 1)) | (iova & (size - 1)),
                                    read, write});
            }
            return grants;
        }
        if (next >= level) {
            return grants;                  // NextLevel must go down
        }
        // The levels between are skipped: their index bits must be zero.
        for (unsigned skipped = level - 1; skipped > next; skipped--) {
            if ((iova >> level_shift(skipped)) & 511) {
                return grants;
            }
        }
        table = address;
        level = next;
    }
}

// What requester devid's DTE (in the standard device table) and tables
// grant for iova. Passthrough DTEs grant the IOVA itself.
inline std::vector<Grant> reference_translate(const FuzzMachine &m,
                                              uint16_t devid, uint64_t iova,
                                              bool all)
{
    const uint64_t q0 = m.r64(kDevTable + devid * 32ULL);
    const bool valid = q0 & 1, translation_valid = q0 >> 1 & 1;
    const unsigned mode = q0 >> 9 & 7;
    const bool read = q0 >> 61 & 1, write = q0 >> 62 & 1;
    if (!valid) {
        return {Grant{iova, true, true}};
    }
    if (!translation_valid || mode == 0) {
        return {Grant{iova, read, write}};
    }
    if (mode == 7) {
        return {};                          // reserved
    }
    // An IOVA above what `mode` levels cover is out of range.
    if (mode < 6 && (iova >> level_shift(mode + 1)) != 0) {
        return {};
    }
    return reference_walk(m, q0 & 0x000ffffffffff000ULL, mode, iova, read,
                          write, all);
}

// The engine granted `t` for an access to iova: the tables must grant at
// least as much, at the same address.
inline void check_granted(const FuzzMachine &m, uint16_t devid, uint64_t iova,
                          unsigned requested, const IoguardTranslation &t)
{
    if (t.perm == IOGUARD_PERM_NONE) {
        return;
    }
    FUZZ_CHECK((requested & ~t.perm) == 0,
               "devid %04x iova %llx: asked %u, granted %u", devid,
               (unsigned long long)iova, requested, t.perm);
    const uint64_t address = t.translated_addr | (iova & t.addr_mask);
    auto grants_it = [&](const Grant &g) {
        return g.address == address && (!(t.perm & IOGUARD_PERM_READ) || g.read) &&
               (!(t.perm & IOGUARD_PERM_WRITE) || g.write);
    };
    // The entry on iova's path, or else a large page another entry of the
    // same table wrote without replicating it.
    for (bool all : {false, true}) {
        for (const Grant &g : reference_translate(m, devid, iova, all)) {
            if (grants_it(g)) {
                return;
            }
        }
    }
    FUZZ_CHECK(false, "devid %04x iova %llx: engine grants %u at 0x%llx, the "
               "tables do not", devid, (unsigned long long)iova, t.perm,
               (unsigned long long)address);
}

} // namespace ioguard_fuzz
