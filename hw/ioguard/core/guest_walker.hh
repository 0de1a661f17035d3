// The guest translation walk (AMD IOMMU spec, "Guest Translation"): a
// request's PASID picks a guest CR3 out of the device's GCR3 table, the v2
// page tables under it (the x86-64 long-mode format, 4 or 5 levels) take
// the guest virtual address to a guest physical one, and the host tables
// (the DTE's Mode and root; Mode 0: none) take that, and every table
// address on the way, to a system physical one.
//
// Linux's amd_iommu=pgtbl_v2 is the simple case: Mode 0, a one-level GCR3
// table whose PASID 0 entry holds the v2 tables that the DMA API fills, and
// DTE.GIoV so that requests without a PASID use PASID 0.
#pragma once

#include <cstdint>

#include "device_table.hh"
#include "host.hh"

namespace ioguard {

// A request as the guest walk sees it.
struct GuestAccess {
    uint32_t pasid;
    uint64_t address;   // guest virtual
    bool write;
    // Requests without a PASID prefix are user requests; with one, the
    // prefix says (Privileged Mode Requested: supervisor).
    bool user;
    // False for a look that moves no data (QEMU's probes, the verifier,
    // the monitor): the Accessed and Dirty bits stay as they are.
    bool sets_accessed = true;
};

struct GuestWalkResult {
    enum class Status {
        Ok,
        Gcr3NotPresent,  // the PASID's GCR3 entry, or a level above it, V=0
        NotPresent,      // a v2 entry with P=0
        OutOfRange,      // address bits above what the levels translate (or
                         // not sign-extended, for PASIDs other than 0), or a
                         // PASID beyond the GCR3 table's levels
        Reserved,        // a reserved bit in a GCR3 or v2 entry
        NoAccess,        // R/W or U/S of the walk refuse the access
        TableReadError,  // an entry is not in RAM
        HostFault,       // the host tables refuse a guest physical address
    };
    Status status = Status::NotPresent;
    // Ok: the system physical page that holds the address (the smaller of
    // the guest's and the host's page), what it allows, and whether the
    // guest's leaf is dirty (a write through a clean entry walks again, to
    // set D).
    uint64_t page_base = 0;
    uint64_t page_size = 0;
    bool read = false;
    bool write = false;
    bool dirty = false;
    bool user = false;          // U/S along the walk lets user requests in
    unsigned entries_read = 0;  // GCR3, v2 and host entries
    // TableReadError: the system address of the entry; HostFault: the
    // guest physical address the host tables refused.
    uint64_t error_address = 0;
};

// Walks dte's guest tables for access, setting the v2 entries' Accessed
// bits (and the leaf's Dirty bit for a write) as a processor would, once
// the access is known to be allowed. Reads at most one entry per level of
// each table, so it is bounded whatever the guest wrote.
GuestWalkResult walk_guest(Host &host, const DeviceTableEntry &dte,
                           const GuestAccess &access);

// Levels of the v2 tables dte asks for (4 or 5), or 0 for a reserved
// encoding.
unsigned guest_paging_levels(const DeviceTableEntry &dte);

// The pieces of the walk that the mapping walk (mapping_walker.cc) shares.

inline unsigned v2_index_shift(unsigned level) { return 12 + 9 * (level - 1); }

// Guest physical memory as the device's tables see it: through the host
// tables when the DTE has them (Mode 1..6), else as it is. Failures are
// said in r (status, error_address); host entries read are counted there.
class GuestPhysical {
public:
    GuestPhysical(Host &host, const DeviceTableEntry &dte, GuestWalkResult &r)
        : host_(host), dte_(dte), r_(r)
    {
    }

    // The system physical page holding gpa, for an access that reads (or
    // writes, if write), and what the host tables allow there (not the
    // DTE's IR and IW: those are the device's, not the IOMMU's own reads
    // of guest tables).
    bool translate(uint64_t gpa, bool write, uint64_t &spa,
                   uint64_t &page_size, bool &readable, bool &writable);

    // The 8-byte table entry at gpa, and whether the host tables let the
    // IOMMU write it back (with its Accessed and Dirty bits).
    bool read_entry(uint64_t gpa, uint64_t &value, uint64_t &spa,
                    bool &writable);

    // Accessed and Dirty updates go to the system address the entry was
    // read from. A write that fails (the entry is no longer RAM) is
    // dropped: the translation was already allowed.
    void write_entry(uint64_t spa, uint64_t value);

private:
    Host &host_;
    const DeviceTableEntry &dte_;
    GuestWalkResult &r_;
};

// The guest CR3 (a guest physical address) of pasid in dte's GCR3 table.
bool find_guest_cr3(GuestPhysical &mem, const DeviceTableEntry &dte,
                    uint32_t pasid, GuestWalkResult &r, uint64_t &cr3);

// Reserved bits of a present v2 entry at level (5..1); PS makes a leaf at
// levels 3 and 2, is reserved above, and is PAT at level 1.
bool v2_reserved(uint64_t entry, unsigned level);

} // namespace ioguard
