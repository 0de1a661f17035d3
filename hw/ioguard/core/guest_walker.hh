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

} // namespace ioguard
