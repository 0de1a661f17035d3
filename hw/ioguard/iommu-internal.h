/*
 * What the files of ioguard-iommu's glue share: a requester's address
 * space (iommu.c) and its IOMMU notifiers (iommu-notifiers.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_IOGUARD_IOMMU_INTERNAL_H
#define HW_IOGUARD_IOMMU_INTERNAL_H

#include "exec/memory.h"
#include "hw/pci/pci.h"
#include "qemu/thread.h"
#include "hw/ioguard/iommu.h"

/* What one requester (bus, devfn) sees when it makes DMA. */
typedef struct IoguardDeviceSpace {
    IoguardIommuState *iommu;
    PCIBus *bus;
    int devfn;
    IOMMUMemoryRegion translated;   /* everything but the MSI window */
    MemoryRegion direct;            /* instead, while DMA is identity */
    MemoryRegion interrupts;        /* 0xfee00000..0xfeefffff */
    MemoryRegion root;
    AddressSpace as;
    bool identity;
    /*
     * With IOMMU notifiers registered: the translations handed out since
     * they were (what an UNMAP user may hold), or with MAP users the
     * page-table entries they were told of, by IOVA; and the range an
     * invalidation asked us to check again (see ioguard_sync_notifiers).
     */
    IOMMUNotifierFlag notifier_flags;
    QemuMutex records_lock;
    GHashTable *records;            /* page IOVA -> IoguardRecord */
    uint64_t record_shifts;         /* bit n: a record of 2^n bytes */
    bool recheck;
    uint64_t recheck_first, recheck_last;
    bool mapped_warned;             /* too many entries for MAP users */
    /* Where COMPLETE_PPR_REQUEST's answers to its page requests go. */
    IoguardPageResponseFn *page_response;
    void *page_response_opaque;
    /* Where its device-IOTLB invalidations go, besides notifiers. */
    IoguardDeviceIotlbFn *device_iotlb;
    void *device_iotlb_opaque;
} IoguardDeviceSpace;

/* The bus number is read at each use: firmware numbers buses after boot. */
static inline uint16_t ioguard_space_devid(IoguardDeviceSpace *ds)
{
    return PCI_BUILD_BDF(pci_bus_num(ds->bus), ds->devfn);
}

/* Calls fn for each requester's space the IOMMU has made (iommu.c). */
void ioguard_for_each_space(IoguardIommuState *s,
                            void (*fn)(IoguardDeviceSpace *ds, void *opaque),
                            void *opaque);

/* ---- IOMMU notifiers (iommu-notifiers.c) ---- */

void ioguard_notifiers_init(IoguardDeviceSpace *ds);
/* A translation handed out (the DMA path of a requester with users). */
void ioguard_record(IoguardDeviceSpace *ds, const IOMMUTLBEntry *e);
/* Everything its users may hold goes (a new DTE, identity). */
void ioguard_notify_unmap_all(IoguardDeviceSpace *ds);
/* With the engine's lock held: what the next sync checks again. */
void ioguard_mark_recheck(IoguardDeviceSpace *ds, uint64_t first,
                          uint64_t last);
/* The engine's host operations of the same names. */
void ioguard_iommu_pages_invalidated(void *opaque, int domain,
                                     uint64_t first, uint64_t last);
void ioguard_device_iotlb_invalidated(void *opaque, uint16_t devid,
                                      uint64_t first, uint64_t last);
/* After the engine ran (without its lock): unmap what went stale. */
void ioguard_sync_notifiers(IoguardIommuState *s);
/* IOMMUMemoryRegionClass's notify_flag_changed and replay. */
int ioguard_notify_flag_changed(IOMMUMemoryRegion *iommu_mr,
                                IOMMUNotifierFlag old, IOMMUNotifierFlag new,
                                Error **errp);
void ioguard_replay(IOMMUMemoryRegion *iommu_mr, IOMMUNotifier *n);

#endif
