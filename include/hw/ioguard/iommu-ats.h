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

#define TYPE_IOGUARD_IOMMU_MEMORY_REGION "ioguard-iommu-memory-region"

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
} IoguardIommuMemoryRegionClass;

#endif
