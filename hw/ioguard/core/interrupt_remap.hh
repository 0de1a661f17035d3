// Interrupt remapping table entries (IRTEs), 32 or 128 bits, decoded.
#pragma once

#include <cstdint>

namespace ioguard {

struct RemappedInterrupt {
    bool remap_enabled;
    bool suppress_fault;
    bool guest_mode;
    unsigned int_type;
    bool dest_logical;
    uint32_t destination;
    uint8_t vector;
};

RemappedInterrupt decode_irte32(uint32_t e);
RemappedInterrupt decode_irte128(uint64_t lo, uint64_t hi);

} // namespace ioguard
