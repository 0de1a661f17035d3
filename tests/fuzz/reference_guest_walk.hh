// What a device's guest tables grant, worked out the slow, obvious way from
// the AMD I/O Virtualization spec ("Guest Translation": the DTE's GCR3
// table, then x86-64 long-mode page tables) and the processor's paging
// rules, independently of the engine's guest walker, for requests without
// a PASID (DTE.GIoV: PASID 0). Guest physical addresses go through the
// DTE's host tables with reference_walk.hh. It reads RAM directly.
#pragma once

#include <cstdint>
#include <optional>

#include "reference_walk.hh"

namespace ioguard_fuzz {

constexpr uint64_t kAddressBits = 0x000ffffffffff000ULL;    // 51:12

struct GuestDteFields {
    uint64_t q0, q1, q2;
    bool guest_valid() const { return q0 >> 55 & 1; }      // GV
    bool guest_io_valid() const { return q0 >> 54 & 1; }   // GIoV
    unsigned gcr3_levels() const { return q0 >> 56 & 3; }  // GLX
    uint64_t gcr3_root() const
    {
        return (q0 >> 58 & 7) << 12 | (q1 >> 16 & 0xffff) << 15 |
               (q1 >> 43 & 0x1fffff) << 31;
    }
    unsigned paging_mode() const { return q2 >> 54 & 3; }
};

inline GuestDteFields guest_dte_of(const FuzzMachine &m, uint16_t devid)
{
    const uint64_t at = kDevTable + devid * 32ULL;
    return {m.r64(at), m.r64(at + 8), m.r64(at + 16)};
}

// A guest physical address through the host tables (DTE TV and Mode 1..6)
// or as it is (Mode 0), with the permissions the tables give: those of the
// IOMMU's own reads of guest tables. The device's DMA also needs the
// DTE's IR and IW.
inline std::optional<Grant> host_grant(const FuzzMachine &m, uint64_t q0,
                                       uint64_t gpa)
{
    const bool read = true, write = true;
    const unsigned mode = q0 >> 9 & 7;
    if (mode == 0) {
        return Grant{gpa, read, write};
    }
    if (mode == 7 || (mode < 6 && (gpa >> level_shift(mode + 1)) != 0)) {
        return std::nullopt;
    }
    const auto grants = reference_walk(m, q0 & kAddressBits, mode, gpa, read,
                                       write, false);
    if (grants.empty()) {
        return std::nullopt;
    }
    return grants.front();
}

// An 8-byte guest table entry at a guest physical address, if the device
// may read it and it is RAM.
inline std::optional<uint64_t> guest_entry(const FuzzMachine &m, uint64_t q0,
                                           uint64_t gpa)
{
    const auto g = host_grant(m, q0, gpa);
    if (!g || !g->read || g->address + 8 > kRamSize) {
        return std::nullopt;
    }
    return m.r64(g->address);
}

// What the guest tables of a PASID grant a request for gva (a DTE with GV,
// guest translation on; requests without a PASID: PASID 0 through GIoV,
// user requests). GLXSup is 1: two GCR3 levels; PASmax 15: 16-bit PASIDs.
inline std::optional<Grant> reference_guest_translate(const FuzzMachine &m,
                                                      uint16_t devid,
                                                      uint64_t gva,
                                                      uint32_t pasid = 0,
                                                      bool user_request = true)
{
    const GuestDteFields dte = guest_dte_of(m, devid);
    if (dte.gcr3_levels() > 1 || dte.paging_mode() > 1) {
        return std::nullopt;        // an illegal DTE
    }
    const unsigned levels = dte.paging_mode() == 1 ? 5 : 4;
    const unsigned width = 12 + 9 * levels;
    if (pasid == 0 && gva >> width) {
        return std::nullopt;        // PASID 0: no sign extension
    }
    if (pasid != 0 && gva >> (width - 1) != 0 &&
        gva >> (width - 1) != ~uint64_t{0} >> (width - 1)) {
        return std::nullopt;        // other PASIDs: canonical addresses
    }
    if (pasid > 0xffff || pasid >> (9 * (dte.gcr3_levels() + 1))) {
        return std::nullopt;        // beyond PASmax, or the GCR3 levels
    }
    // The GCR3 table: 9 bits of the PASID per level.
    uint64_t table = dte.gcr3_root();
    for (int level = int(dte.gcr3_levels()); level >= 0; level--) {
        const auto e = guest_entry(m, dte.q0,
                                   table + ((pasid >> (9 * level)) & 511) * 8);
        if (!e || !(*e & 1) || (*e >> 52) != 0) {
            return std::nullopt;
        }
        table = *e & kAddressBits;
    }
    bool writable = true, user = true;
    uint64_t gpa = 0;
    for (unsigned level = levels;; level--) {
        const unsigned shift = 12 + 9 * (level - 1);
        const auto e = guest_entry(m, dte.q0, table + ((gva >> shift) & 511) * 8);
        if (!e || !(*e & 1)) {
            return std::nullopt;
        }
        const bool large = (*e >> 7 & 1) && level > 1;
        if (large && level > 3) {
            return std::nullopt;    // PS is reserved in PML4 and PML5 entries
        }
        writable = writable && (*e >> 1 & 1);
        user = user && (*e >> 2 & 1);
        if (large) {
            // Address bits below the page's size, above PAT (bit 12), are
            // reserved.
            if ((*e >> 13) & ((uint64_t{1} << (shift - 13)) - 1)) {
                return std::nullopt;
            }
        }
        if (level == 1 || large) {
            const uint64_t size = uint64_t{1} << shift;
            gpa = (*e & kAddressBits & ~(size - 1)) | (gva & (size - 1));
            break;
        }
        table = *e & kAddressBits;
    }
    if (user_request && !user) {
        return std::nullopt;        // U/S keeps user requests out
    }
    const auto host = host_grant(m, dte.q0, gpa);
    if (!host) {
        return std::nullopt;
    }
    const bool dte_read = dte.q0 >> 61 & 1, dte_write = dte.q0 >> 62 & 1;
    return Grant{host->address, host->read && dte_read,
                 writable && host->write && dte_write};
}

} // namespace ioguard_fuzz
