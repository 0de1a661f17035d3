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

Event Event::invalid_device_request(uint16_t devid, uint32_t pasid,
                                    uint64_t address, unsigned flags)
{
    Event ev = make(EVENT_TYPE_INV_DEV_REQ, devid, uint16_t(pasid), flags,
                    address);
    ev.dw[0] |= ((pasid >> 16) & 0xf) << 16;
    return ev;
}

Event Event::invalid_ppr_request(uint16_t devid, uint32_t pasid, uint16_t tag,
                                 uint64_t address)
{
    Event ev = make(EVENT_TYPE_INV_PPR_REQ, devid, 0, 0, address);
    ev.dw[0] |= (pasid & 0xffff) << 16;
    ev.dw[1] |= ((pasid >> 16) & 0xf) << 10 | (tag & 0x3ff);
    return ev;
}

Event Event::command_hardware_error(uint64_t addr, unsigned flags)
{
    return make(EVENT_TYPE_CMD_HARD_ERR, 0, 0, flags, addr);
}

} // namespace ioguard
