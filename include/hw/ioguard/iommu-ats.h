/*
 * What a device with ATS tells ioguard-iommu's DMA verifier, through the
 * IOMMU region that translates it (hw/ioguard/iommu.c implements it;
 * hw/ioguard/nic-ats.c uses it).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_IOGUARD_IOMMU_ATS_H
#define HW_IOGUARD_IOMMU_ATS_H

#include "exec/memory.h"
#include "hw/ioguard/iommu-engine.h"

#define TYPE_IOGUARD_IOMMU_MEMORY_REGION "ioguard-iommu-memory-region"

/*
 * The PRG response to a device's page request: COMPLETE_PPR_REQUEST's
 * answer (code: IOGUARD_PRG_*, or another 4-bit code software wrote).
 * Called from the IOMMU's command processing with the engine's lock held:
 * a device retries its DMA later (a bottom half), not from here.
 */
/* INVALIDATE_IOTLB_PAGES of first..last for the device; called as
 * IoguardPageResponseFn is (below): only drop what the range covers. */
typedef void IoguardDeviceIotlbFn(void *opaque, uint64_t first,
                                  uint64_t last);
typedef void IoguardPageResponseFn(void *opaque, bool pasid_valid,
                                   uint32_t pasid, uint16_t group,
                                   unsigned code);

/*
 * A requester's IOMMU region, and what a device with ATS (a translation
 * cache of its own, e.g. ioguard-nic,ats=on) tells the DMA verifier
 * through it: the generation of device-IOTLB invalidations when it got a
 * translation, and each use of one. A device finds these by QOM class, so
 * that it needs nothing of ioguard-iommu to link.
 */
typedef struct IoguardIommuMemoryRegionClass {
    IOMMUMemoryRegionClass parent_class;
    uint64_t (*ats_generation)(IOMMUMemoryRegion *iommu_mr);
    /* pasid -1: a translation of a request without a PASID */
    void (*ats_used)(IOMMUMemoryRegion *iommu_mr, int32_t pasid,
                     bool privileged, uint64_t iova, uint64_t target,
                     bool write, uint64_t generation);
    /*
     * An ATS translation request with a PASID prefix (QEMU 10.0's memory
     * core has no PASIDs): the PASID's guest tables answer, refusing and
     * logging what they do not allow (perm IOMMU_NONE).
     */
    IOMMUTLBEntry (*translate_pasid)(IOMMUMemoryRegion *iommu_mr,
                                     uint32_t pasid, bool privileged,
                                     hwaddr addr, bool write);
    /*
     * PCIe PRI (QEMU 10.0's PCIIOMMUOps has none): the device asks for a
     * page its translation request was refused. request->devid is the
     * region's requester whatever it says. A logged request is answered
     * later through respond(opaque, ...), the last function the device
     * gave. Returns IOGUARD_PAGE_REQUEST_*.
     */
    unsigned (*page_request)(IOMMUMemoryRegion *iommu_mr,
                             IoguardPageRequest *request,
                             IoguardPageResponseFn *respond, void *opaque);
    /*
     * A device that keeps translations of requests with a PASID (QEMU's
     * notifiers know none) hears each INVALIDATE_IOTLB_PAGES for its
     * requester ID here, the range of every PASID (or none), whatever its
     * DMA without a PASID does (identity, too).
     */
    void (*listen_device_iotlb)(IOMMUMemoryRegion *iommu_mr,
                                IoguardDeviceIotlbFn *fn, void *opaque);
    /* The device goes (unrealized): nothing may reach opaque after. */
    void (*forget_device)(IOMMUMemoryRegion *iommu_mr, void *opaque);
} IoguardIommuMemoryRegionClass;

#endif
