// The fault records behind query-ioguard-faults: a bounded ring, kept on
// the host side, of every event the IOMMU generated (whether the guest's
// event log received it or not) and of the DMA verifier's findings.
//
// Each record says why, in more detail than the architected event: the
// event of a fault on a not-present PTE and of one on a DTE the guest never
// validated can look alike, their reasons do not. The ring is written with
// the engine's control-plane lock held.
#pragma once

#include <cstdint>
#include <vector>

#include "event_log.hh"
#include "hw/ioguard/iommu-engine.h"

namespace ioguard {

// Why an event (or a verifier finding) was generated. The values and names
// are the C API's IOGUARD_FAULT_* (see fault_reason_name()).
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

// A verifier finding: DMA that an IOTLB entry let through although the
// guest's tables no longer say so.
struct StaleUse {
    uint16_t devid;
    uint16_t domain;
    uint64_t iova;
    unsigned access;            // IOGUARD_PERM_READ or _WRITE
    uint64_t stale_target;      // where the IOTLB sent it
    unsigned stale_perm;
    bool now_mapped;            // what a fresh walk says
    uint64_t current_target;
    unsigned current_perm;
};

class FaultRecords {
public:
    explicit FaultRecords(unsigned capacity) : ring_(capacity) {}

    // Each returns the record made, numbered, also when none are kept.
    IoguardFaultRecord record_event(const Event &ev, FaultReason reason,
                                    Delivery delivery, uint64_t now_ns);
    IoguardFaultRecord record_stale_use(const StaleUse &use, uint64_t now_ns);

    // The records still held, oldest first.
    std::vector<IoguardFaultRecord> snapshot() const;
    // Records pushed out of the ring by newer ones.
    uint64_t overwritten() const;
    void clear();

private:
    IoguardFaultRecord add(IoguardFaultRecord r, uint64_t now_ns,
                           FaultReason reason);

    std::vector<IoguardFaultRecord> ring_;
    uint64_t next_seq_ = 1;     // records made so far + 1
    uint64_t cleared_at_ = 1;   // next_seq_ at the last clear()
};

} // namespace ioguard
