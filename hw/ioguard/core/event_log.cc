#include "event_log.hh"

#include "bits.hh"
#include "hw/ioguard/amd-vi-regs.h"

namespace ioguard {

namespace {

Event make(unsigned type, uint16_t devid, uint16_t domain, unsigned flags,
           uint64_t address)
{
    Event ev;
    ev.dw[0] = devid;
    ev.dw[1] = uint32_t(type) << 28 | (flags & 0xfff) << 16 | domain;
    ev.dw[2] = uint32_t(address);
    ev.dw[3] = uint32_t(address >> 32);
    return ev;
}

} // namespace

bool Event::has_requester() const
{
    return type() != EVENT_TYPE_ILL_CMD && type() != EVENT_TYPE_CMD_HARD_ERR;
}

Event Event::io_page_fault(uint16_t devid, uint16_t domain, uint64_t iova,
                           unsigned flags)
{
    return make(EVENT_TYPE_IO_FAULT, devid, domain, flags, iova);
}

Event Event::illegal_dev_table_entry(uint16_t devid, uint64_t iova,
                                     unsigned flags)
{
    return make(EVENT_TYPE_ILL_DEV, devid, 0, flags, iova);
}

Event Event::dev_tab_hardware_error(uint16_t devid, uint64_t dte_addr,
                                    unsigned flags)
{
    return make(EVENT_TYPE_DEV_TAB_ERR, devid, 0, flags, dte_addr);
}

Event Event::page_tab_hardware_error(uint16_t devid, uint16_t domain,
                                     uint64_t entry_addr, unsigned flags)
{
    return make(EVENT_TYPE_PAGE_TAB_ERR, devid, domain, flags, entry_addr);
}

Event Event::illegal_command_error(uint64_t command_addr)
{
    return make(EVENT_TYPE_ILL_CMD, 0, 0, 0, command_addr);
}

Event Event::command_hardware_error(uint64_t addr, unsigned flags)
{
    return make(EVENT_TYPE_CMD_HARD_ERR, 0, 0, flags, addr);
}

uint64_t EventLog::size_bytes() const
{
    unsigned len = bits(base_register, 59, 56);
    if (len < 8) {
        len = 8;    // 0000b..0111b are reserved; the smallest log is 256 entries
    }
    return (uint64_t{1} << len) * IOGUARD_EVENT_SIZE;
}

uint64_t EventLog::base() const
{
    return base_register & IOGUARD_BASE_ADDR_MASK;
}

EventLog::Outcome EventLog::append(Host &host, const Event &ev)
{
    const uint64_t size = size_bytes();
    const uint64_t slot = tail % size;
    if ((slot + IOGUARD_EVENT_SIZE) % size == head % size) {
        return Outcome::Overflow;
    }
    uint8_t buf[IOGUARD_EVENT_SIZE];
    for (int i = 0; i < 4; i++) {
        store_le32(buf + 4 * i, ev.dw[i]);
    }
    // The whole entry lands in memory before the tail moves: Linux reads a
    // zero type as "not written yet".
    if (!host.write_ram(base() + slot, buf, sizeof(buf))) {
        return Outcome::WriteError;
    }
    tail = (slot + IOGUARD_EVENT_SIZE) % size;
    return Outcome::Logged;
}

} // namespace ioguard
