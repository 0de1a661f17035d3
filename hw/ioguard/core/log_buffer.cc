#include "log_buffer.hh"

#include "bits.hh"
#include "hw/ioguard/amd-vi-regs.h"

namespace ioguard {

namespace {

constexpr uint64_t kEntrySize = 16;

} // namespace

uint64_t LogBuffer::size_bytes() const
{
    unsigned len = bits(base_register, 59, 56);
    if (len < 8) {
        len = 8;    // 0000b..0111b are reserved; the smallest log is 256 entries
    }
    return (uint64_t{1} << len) * kEntrySize;
}

uint64_t LogBuffer::base() const
{
    return base_register & IOGUARD_BASE_ADDR_MASK;
}

void LogBuffer::set_base(uint64_t value)
{
    base_register = value & (IOGUARD_BASE_ADDR_MASK |
                             (0xfULL << IOGUARD_BASE_LEN_SHIFT));
    head = tail = 0;
}

void LogBuffer::set_head(uint64_t value)
{
    head = value & IOGUARD_RING_PTR_MASK & (size_bytes() - 1);
}

void LogBuffer::set_tail(uint64_t value)
{
    tail = value & IOGUARD_RING_PTR_MASK & (size_bytes() - 1);
}

LogBuffer::Outcome LogBuffer::append(Host &host, const uint32_t entry[4])
{
    const uint64_t size = size_bytes();
    const uint64_t slot = tail % size;
    if ((slot + kEntrySize) % size == head % size) {
        return Outcome::Overflow;
    }
    uint8_t buf[kEntrySize];
    for (int i = 0; i < 4; i++) {
        store_le32(buf + 4 * i, entry[i]);
    }
    // The whole entry lands in memory before the tail moves: Linux reads a
    // zero type as "not written yet".
    if (!host.write_ram(base() + slot, buf, sizeof(buf))) {
        return Outcome::WriteError;
    }
    tail = (slot + kEntrySize) % size;
    return Outcome::Logged;
}

} // namespace ioguard
