/*
 * Fault rules on an ioguard device (ioguard-iommu, ioguard-nic): the
 * fault-rules and fault-seed properties, the QMP commands that add, list
 * and remove rules at run time, and the trace of every fault fired.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_IOGUARD_FAULT_DEVICE_H
#define HW_IOGUARD_FAULT_DEVICE_H

#include "hw/ioguard/fault-inject.h"
#include "hw/qdev-core.h"

/*
 * The rule sets of the devices, by the sites they have (bits of
 * IOGUARD_FAULT_SITE_*).
 */
#define IOGUARD_FAULT_SITES_IOMMU                                           \
    (((1u << IOGUARD_FAULT_SITE_NIC_DESC) - 1) |                            \
     (1u << IOGUARD_FAULT_SITE_NOTIFIER) |                                  \
     (1u << IOGUARD_FAULT_SITE_DEVICE_IOTLB) |                              \
     (1u << IOGUARD_FAULT_SITE_PAGE_REQUEST) |                              \
     (1u << IOGUARD_FAULT_SITE_PAGE_RESPONSE))
#define IOGUARD_FAULT_SITES_NIC                                             \
    ((1u << IOGUARD_FAULT_SITE_NIC_DESC) | (1u << IOGUARD_FAULT_SITE_NIC_DMA) | \
     (1u << IOGUARD_FAULT_SITE_NIC_LINK))

/* Rules a device may hold at once. */
#define IOGUARD_FAULT_RULES_MAX 64

/*
 * A device's injector, seeded with seed and loaded with the rules in
 * rules_file (one per line; blank lines and lines starting with '#' are
 * skipped; NULL: no file). changed(dev) is called after QMP added or
 * removed a rule. NULL with errp set (naming the file, line and what is
 * wrong) on failure.
 */
IoguardFaults *ioguard_fault_device_new(DeviceState *dev, uint32_t sites,
                                        const char *rules_file, uint64_t seed,
                                        void (*changed)(DeviceState *dev),
                                        Error **errp);
void ioguard_fault_device_free(IoguardFaults *faults);

/* Whether a fault fires now (virtual time) at site; *fired says which. */
bool ioguard_fault_check(IoguardFaults *faults, unsigned site,
                         uint16_t requester, uint64_t address, bool write,
                         IoguardFiredFault *fired);

#endif
