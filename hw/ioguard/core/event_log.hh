// The events the IOMMU writes to its event log (a LogBuffer), and why.
#pragma once

#include <cstdint>

#include "hw/ioguard/iommu-engine.h"

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
    // A page request the IOMMU cannot log: software answers it with
    // COMPLETE_PPR_REQUEST (RX=0). The PASID and tag as in the PPR log.
    // A request the IOMMU cannot take: one with a PASID for a DTE without
    // guest tables. The PASID where other events have the domain.
    static Event invalid_device_request(uint16_t devid, uint32_t pasid,
                                        uint64_t address, unsigned flags);
    static Event invalid_ppr_request(uint16_t devid, uint32_t pasid,
                                     uint16_t tag, uint64_t address);
};

// Why the core generated an event (or the verifier a finding): in more
// detail than the event itself (see fault_records.hh). The values and names
// are the C API's IOGUARD_FAULT_* (see ioguard_fault_reason_name()).
enum class FaultReason : unsigned {
    BeyondDeviceTable = IOGUARD_FAULT_BEYOND_DEVICE_TABLE,
    DeviceTableNotInRam = IOGUARD_FAULT_DEVICE_TABLE_NOT_IN_RAM,
    IllegalDeviceTableEntry = IOGUARD_FAULT_ILLEGAL_DEVICE_TABLE_ENTRY,
    DeviceTablePermission = IOGUARD_FAULT_DEVICE_TABLE_PERMISSION,
    NotPresent = IOGUARD_FAULT_NOT_PRESENT,
    OutOfRange = IOGUARD_FAULT_OUT_OF_RANGE,
    PageTableReserved = IOGUARD_FAULT_PAGE_TABLE_RESERVED,
    PageTableNotInRam = IOGUARD_FAULT_PAGE_TABLE_NOT_IN_RAM,
    Permission = IOGUARD_FAULT_PERMISSION,
    InterruptIndexBeyondTable = IOGUARD_FAULT_INTERRUPT_INDEX_BEYOND_TABLE,
    InterruptTableNotInRam = IOGUARD_FAULT_INTERRUPT_TABLE_NOT_IN_RAM,
    InterruptNotRemapped = IOGUARD_FAULT_INTERRUPT_NOT_REMAPPED,
    IllegalCommand = IOGUARD_FAULT_ILLEGAL_COMMAND,
    CommandNotInRam = IOGUARD_FAULT_COMMAND_NOT_IN_RAM,
    CompletionStoreNotInRam = IOGUARD_FAULT_COMPLETION_STORE_NOT_IN_RAM,
    UseAfterUnmap = IOGUARD_FAULT_USE_AFTER_UNMAP,
    StaleTranslation = IOGUARD_FAULT_STALE_TRANSLATION,
    Injected = IOGUARD_FAULT_INJECTED,
    AtsUseAfterInvalidation = IOGUARD_FAULT_ATS_USE_AFTER_INVALIDATION,
    InvalidPageRequest = IOGUARD_FAULT_INVALID_PAGE_REQUEST,
    InvalidDeviceRequest = IOGUARD_FAULT_INVALID_DEVICE_REQUEST,
};

// What became of a record's event (IOGUARD_DELIVERY_*).
enum class Delivery : unsigned {
    Logged = IOGUARD_DELIVERY_LOGGED,
    LogFull = IOGUARD_DELIVERY_LOG_FULL,
    LogDisabled = IOGUARD_DELIVERY_LOG_DISABLED,
    LogStopped = IOGUARD_DELIVERY_LOG_STOPPED,
    LogNotInRam = IOGUARD_DELIVERY_LOG_NOT_IN_RAM,
    NotReported = IOGUARD_DELIVERY_NOT_REPORTED,
    Injected = IOGUARD_DELIVERY_INJECTED,
};

} // namespace ioguard
