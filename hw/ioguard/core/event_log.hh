// The event log: a ring of 16-byte entries in guest memory that the IOMMU
// fills (tail) and the driver drains (head), plus the events themselves.
#pragma once

#include <cstdint>

#include "host.hh"

namespace ioguard {

struct Event {
    uint32_t dw[4] = {};

    unsigned type() const { return dw[1] >> 28; }
    unsigned flags() const { return (dw[1] >> 16) & 0xfff; }
    uint16_t devid() const { return dw[0] & 0xffff; }
    uint64_t address() const { return uint64_t(dw[3]) << 32 | dw[2]; }
    // Command errors name no requester; the other events do.
    bool has_requester() const;

    static Event io_page_fault(uint16_t devid, uint16_t domain, uint64_t iova,
                               unsigned flags);
    static Event illegal_dev_table_entry(uint16_t devid, uint64_t iova,
                                         unsigned flags);
    static Event dev_tab_hardware_error(uint16_t devid, uint64_t dte_addr,
                                        unsigned flags);
    static Event page_tab_hardware_error(uint16_t devid, uint16_t domain,
                                         uint64_t entry_addr, unsigned flags);
    static Event illegal_command_error(uint64_t command_addr);
    static Event command_hardware_error(uint64_t addr, unsigned flags);
};

class EventLog {
public:
    enum class Outcome { Logged, Overflow, WriteError };

    // Register state, owned here and exposed through the MMIO file.
    uint64_t base_register = 0;   // MMIO 0x10
    uint64_t head = 0;            // MMIO 0x2010, byte offset
    uint64_t tail = 0;            // MMIO 0x2018, byte offset

    uint64_t size_bytes() const;
    uint64_t base() const;

    // Appends ev if the log is running and not full; on overflow it stops
    // (EventLogRun=0) until the driver re-enables it.
    Outcome append(Host &host, const Event &ev);
};

} // namespace ioguard
