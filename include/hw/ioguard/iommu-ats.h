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
    void (*ats_used)(IOMMUMemoryRegion *iommu_mr, uint64_t iova,
                     uint64_t target, bool write, uint64_t generation);
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
    /* The device goes (unrealized): no answer may reach opaque after. */
    void (*forget_page_responder)(IOMMUMemoryRegion *iommu_mr, void *opaque);
} IoguardIommuMemoryRegionClass;

#endif
