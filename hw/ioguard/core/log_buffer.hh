// A log the IOMMU fills and the driver drains: a ring of 16-byte entries in
// guest memory, its base register (address in 51:12, length exponent in
// 59:56), the head the driver moves and the tail the IOMMU moves. The
// event log and the PPR log are two of them.
#pragma once

#include <cstdint>

#include "host.hh"

namespace ioguard {

class LogBuffer {
public:
    enum class Outcome { Logged, Overflow, WriteError };

    // Register state, owned here and exposed through the MMIO file.
    uint64_t base_register = 0;
    uint64_t head = 0;            // byte offset
    uint64_t tail = 0;            // byte offset

    uint64_t size_bytes() const;
    uint64_t base() const;

    // The register writes: a new base empties the log; head and tail stay
    // inside it.
    void set_base(uint64_t value);
    void set_head(uint64_t value);
    void set_tail(uint64_t value);

    // Appends the entry if the log is not full.
    Outcome append(Host &host, const uint32_t entry[4]);
};

} // namespace ioguard
