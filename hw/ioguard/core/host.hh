// What the engine needs from its host (QEMU, or a unit-test fake).
#pragma once

#include <cstdint>
#include <string>

#include "hw/ioguard/iommu-engine.h"

namespace ioguard {

class Host {
public:
    virtual ~Host() = default;
    // Guest-physical RAM only; false if any byte is not RAM.
    virtual bool read_ram(uint64_t addr, void *buf, uint64_t len) = 0;
    virtual bool write_ram(uint64_t addr, const void *buf, uint64_t len) = 0;
    virtual void raise_interrupt() = 0;
    virtual void deliver_msi(uint64_t address, uint32_t data) = 0;
    virtual void guest_error(const std::string &message) = 0;
    virtual void interrupt_table_invalidated(int devid) = 0;
    virtual void device_table_changed(int devid) = 0;
    virtual uint64_t now_ns() = 0;
    // For tracing: a command taken from the command buffer at addr, and
    // every fault record made (events and verifier findings).
    virtual void command_executed(const uint32_t cmd[4], uint64_t addr) = 0;
    virtual void fault_recorded(const IoguardFaultRecord &record) = 0;
    // Call Iommu::run_timers() once virtual time reaches deadline_ns (a
    // later call replaces an earlier deadline). Only fault rules that
    // delay completions need it.
    virtual void wake_at(uint64_t deadline_ns) { (void)deadline_ns; }
    // The IOTLB dropped domain's translations of first..last (all of them:
    // domain < 0), for hosts that keep translations of their own.
    virtual void iommu_pages_invalidated(int domain, uint64_t first,
                                         uint64_t last)
    {
        (void)domain, (void)first, (void)last;
    }
    // INVALIDATE_IOTLB_PAGES: devid's device IOTLB (ATS) drops first..last.
    virtual void device_iotlb_invalidated(uint16_t devid, uint64_t first,
                                          uint64_t last)
    {
        (void)devid, (void)first, (void)last;
    }
    // COMPLETE_PPR_REQUEST: the PRG response the IOMMU sends devid.
    virtual void page_response(uint16_t devid, bool pasid_valid,
                               uint32_t pasid, uint16_t group, unsigned code)
    {
        (void)devid, (void)pasid_valid, (void)pasid, (void)group, (void)code;
    }
};

} // namespace ioguard
