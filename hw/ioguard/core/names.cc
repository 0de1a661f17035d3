// The names of the C API's codes, in QMP spelling: what the monitor
// (query-ioguard-stats, query-ioguard-faults) and the device's trace events
// print. NULL for a code without a name, unless said otherwise.
#include "hw/ioguard/amd-vi-regs.h"
#include "hw/ioguard/iommu-engine.h"

extern "C" const char *ioguard_event_name(unsigned type)
{
    switch (type) {
    case EVENT_TYPE_ILL_DEV: return "illegal-dev-table-entry";
    case EVENT_TYPE_IO_FAULT: return "io-page-fault";
    case EVENT_TYPE_DEV_TAB_ERR: return "dev-tab-hardware-error";
    case EVENT_TYPE_PAGE_TAB_ERR: return "page-tab-hardware-error";
    case EVENT_TYPE_ILL_CMD: return "illegal-command-error";
    case EVENT_TYPE_CMD_HARD_ERR: return "command-hardware-error";
    case EVENT_TYPE_INV_DEV_REQ: return "invalid-device-request";
    case EVENT_TYPE_INV_PPR_REQ: return "invalid-ppr-request";
    default: return nullptr;
    }
}

extern "C" const char *ioguard_command_name(unsigned opcode)
{
    switch (opcode) {
    case CMD_COMPL_WAIT: return "completion-wait";
    case CMD_INV_DEV_ENTRY: return "invalidate-devtab-entry";
    case CMD_INV_IOMMU_PAGES: return "invalidate-iommu-pages";
    case CMD_INV_IOTLB_PAGES: return "invalidate-iotlb-pages";
    case CMD_INV_IRT: return "invalidate-interrupt-table";
    case CMD_PREFETCH_IOMMU_PAGES: return "prefetch-iommu-pages";
    case CMD_COMPLETE_PPR: return "complete-ppr-request";
    case CMD_INV_ALL: return "invalidate-iommu-all";
    default: return nullptr;
    }
}

extern "C" const char *ioguard_fault_reason_name(unsigned reason)
{
    switch (reason) {
    case IOGUARD_FAULT_BEYOND_DEVICE_TABLE: return "beyond-device-table";
    case IOGUARD_FAULT_DEVICE_TABLE_NOT_IN_RAM:
        return "device-table-not-in-ram";
    case IOGUARD_FAULT_ILLEGAL_DEVICE_TABLE_ENTRY:
        return "illegal-device-table-entry";
    case IOGUARD_FAULT_DEVICE_TABLE_PERMISSION:
        return "device-table-permission";
    case IOGUARD_FAULT_NOT_PRESENT: return "not-present";
    case IOGUARD_FAULT_OUT_OF_RANGE: return "out-of-range";
    case IOGUARD_FAULT_PAGE_TABLE_RESERVED: return "page-table-reserved";
    case IOGUARD_FAULT_PAGE_TABLE_NOT_IN_RAM: return "page-table-not-in-ram";
    case IOGUARD_FAULT_PERMISSION: return "permission";
    case IOGUARD_FAULT_INTERRUPT_INDEX_BEYOND_TABLE:
        return "interrupt-index-beyond-table";
    case IOGUARD_FAULT_INTERRUPT_TABLE_NOT_IN_RAM:
        return "interrupt-table-not-in-ram";
    case IOGUARD_FAULT_INTERRUPT_NOT_REMAPPED: return "interrupt-not-remapped";
    case IOGUARD_FAULT_ILLEGAL_COMMAND: return "illegal-command";
    case IOGUARD_FAULT_COMMAND_NOT_IN_RAM: return "command-not-in-ram";
    case IOGUARD_FAULT_COMPLETION_STORE_NOT_IN_RAM:
        return "completion-store-not-in-ram";
    case IOGUARD_FAULT_USE_AFTER_UNMAP: return "use-after-unmap";
    case IOGUARD_FAULT_ATS_USE_AFTER_INVALIDATION:
        return "ats-use-after-invalidation";
    case IOGUARD_FAULT_INVALID_PAGE_REQUEST: return "invalid-page-request";
    case IOGUARD_FAULT_INVALID_DEVICE_REQUEST:
        return "invalid-device-request";
    case IOGUARD_FAULT_STALE_TRANSLATION: return "stale-translation";
    case IOGUARD_FAULT_INJECTED: return "injected";
    default: return nullptr;
    }
}

extern "C" const char *ioguard_delivery_name(unsigned delivery)
{
    switch (delivery) {
    case IOGUARD_DELIVERY_LOGGED: return "logged";
    case IOGUARD_DELIVERY_LOG_FULL: return "log-full";
    case IOGUARD_DELIVERY_LOG_DISABLED: return "log-disabled";
    case IOGUARD_DELIVERY_LOG_STOPPED: return "log-stopped";
    case IOGUARD_DELIVERY_LOG_NOT_IN_RAM: return "log-not-in-ram";
    case IOGUARD_DELIVERY_NOT_REPORTED: return "not-reported";
    case IOGUARD_DELIVERY_INJECTED: return "injected";
    default: return "?";
    }
}

extern "C" const char *ioguard_access_name(unsigned perm)
{
    switch (perm & IOGUARD_PERM_RW) {
    case IOGUARD_PERM_READ: return "read";
    case IOGUARD_PERM_WRITE: return "write";
    case IOGUARD_PERM_RW: return "read-write";
    default: return "none";
    }
}
