// Explicit bit extraction for guest-visible formats: no bitfields, no unions,
// no reliance on host endianness.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ioguard {

constexpr uint64_t bit(unsigned n) { return uint64_t{1} << n; }

// Bits hi..lo (inclusive) of v, shifted down.
constexpr uint64_t bits(uint64_t v, unsigned hi, unsigned lo)
{
    const unsigned width = hi - lo + 1;
    const uint64_t mask = width >= 64 ? ~uint64_t{0} : (bit(width) - 1);
    return (v >> lo) & mask;
}

constexpr bool test(uint64_t v, unsigned n) { return (v >> n) & 1; }

inline uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

inline uint32_t load_le32(const uint8_t *p)
{
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
           uint32_t(p[3]) << 24;
}

inline void store_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = uint8_t(v >> (8 * i));
    }
}

inline void store_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = uint8_t(v >> (8 * i));
    }
}

} // namespace ioguard
