// The AMD-Vi v1 (host) page-table walk: 1 to 6 levels, level skipping,
// default-size leaves at any level and NextLevel=7 large pages.
#pragma once

#include <cstdint>

#include "host.hh"
#include "v1_pte.hh"

namespace ioguard {

struct WalkResult {
    enum class Status {
        Ok,
        NotPresent,      // a PDE or PTE with PR=0
        OutOfRange,      // IOVA bits above what Mode covers, or skipped bits set
        Reserved,        // reserved bits or a bad NextLevel/size encoding
        TableReadError,  // a table entry is not in RAM
    };
    Status status = Status::NotPresent;
    uint64_t page_base = 0;   // output address of the page holding the IOVA
    uint64_t page_size = 0;
    bool read = false;        // IR and IW combined along the walk
    bool write = false;
    bool streaming = false;   // the leaf PTE's IOGUARD_PTE_STREAMING bit
    unsigned entries_read = 0;
    uint64_t error_address = 0; // the entry that could not be read

    // The level-1 table the walk reached through a level-2 PDE, and the
    // permissions granted above it: what a page directory cache keeps.
    uint64_t l1_table = 0;
    bool l1_read = false;
    bool l1_write = false;
};

// Walks the tables rooted at root with the DTE's Mode (1..6). Reads at most
// one entry per level, so it is bounded whatever the guest wrote.
WalkResult walk_v1(Host &host, uint64_t root, unsigned mode, uint64_t iova);

// Finishes a walk in a level-1 table reached earlier (see l1_table) with
// the permissions granted above it.
WalkResult walk_v1_from_l1(Host &host, uint64_t l1_table, bool read,
                           bool write, uint64_t iova);

} // namespace ioguard
