// The AMD-Vi v1 (host) page-table walk: 1 to 6 levels, level skipping,
// default-size leaves at any level and NextLevel=7 large pages.
#pragma once

#include <cstdint>

#include "host.hh"

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
    unsigned entries_read = 0;
    uint64_t error_address = 0; // the entry that could not be read
};

// Size in bytes that one entry of a level-L table maps by default.
constexpr uint64_t level_entry_size(unsigned level)
{
    return uint64_t{1} << (12 + 9 * (level - 1));
}

// Walks the tables rooted at root with the DTE's Mode (1..6). Reads at most
// one entry per level, so it is bounded whatever the guest wrote.
WalkResult walk_v1(Host &host, uint64_t root, unsigned mode, uint64_t iova);

} // namespace ioguard
