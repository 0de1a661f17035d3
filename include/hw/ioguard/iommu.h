/*
 * ioguard-iommu: an AMD-Vi compatible IOMMU for q35 (QEMU glue).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_IOGUARD_IOMMU_H
#define HW_IOGUARD_IOMMU_H

#include "hw/acpi/bios-linker-loader.h"
#include "hw/i386/x86-iommu.h"
#include "hw/pci/pci_device.h"
#include "qom/object.h"

#define TYPE_IOGUARD_IOMMU "ioguard-iommu"
#define TYPE_IOGUARD_IOMMU_PCI "ioguard-iommu-pci"
#include "hw/ioguard/iommu-ats.h"


OBJECT_DECLARE_SIMPLE_TYPE(IoguardIommuState, IOGUARD_IOMMU)
OBJECT_DECLARE_SIMPLE_TYPE(IoguardIommuPciState, IOGUARD_IOMMU_PCI)

typedef struct IoguardIommu IoguardIommu;

/* The IOMMU's PCI function: class 0806h, IOMMU and MSI capabilities. */
struct IoguardIommuPciState {
    PCIDevice parent_obj;
    uint8_t cap_offset;
};

struct IoguardIommuState {
    X86IOMMUState parent_obj;

    IoguardIommuPciState pci;
    MemoryRegion mmio;
    IoguardIommu *engine;
    GHashTable *bus_spaces;     /* PCIBus * -> IoguardDeviceSpace *[256] */
    struct IoguardFaults *faults;   /* fault rules (hw/ioguard/fault-device.c) */
    QEMUTimer *fault_timer;     /* completions a fault rule delayed */
    /* Snapshots: the engine's and the fault rules' state while saved */
    uint8_t *saved_engine;
    uint32_t saved_engine_size;
    uint8_t *saved_faults;
    uint32_t saved_faults_size;

    /* properties */
    bool ga;
    bool xtsup;
    bool guest_translation;    /* GTSup, GIOSup: amd_iommu=pgtbl_v2 */
    bool stats;
    uint32_t fault_records;
    bool verifier;
    uint32_t prefetch_depth;
    char *streaming;            /* host STREAMING rules, "00:05.0+..." */
    bool latency_model;
    uint32_t round_trip_ns;
    uint32_t walk_read_ns;
    char *fault_rules;          /* a file of fault rules, one per line */
    uint64_t fault_seed;
    bool dma_remap;             /* MAP notifiers (vfio-pci); NpCache=1 */
};

/* How many fault records an IOMMU may keep (the fault-records property). */
#define IOGUARD_FAULT_RECORDS_MAX 65536

/* The machine's ioguard-iommu (one at most: its MMIO window is fixed). */
IoguardIommuState *ioguard_the_iommu(Error **errp);
/* "bb:dd.f" */
char *ioguard_requester_name(uint16_t devid);
/*
 * "bb:dd.f" in hex, as lspci and info pci print it, naming a PCI device
 * behind s or the IOAPIC's requester ID.
 */
bool ioguard_parse_requester(IoguardIommuState *s, const char *str,
                             uint16_t *devid, Error **errp);

/*
 * How many requesters see memory directly at the moment (IOMMU off, or a
 * DTE that lets them through untranslated): query-ioguard-stats.
 */
unsigned ioguard_identity_requesters(IoguardIommuState *s);

/* Appends the IVRS table (IVHD 10h and 11h) for s to table_data. */
void ioguard_build_ivrs(IoguardIommuState *s, GArray *table_data,
                        BIOSLinker *linker, const char *oem_id,
                        const char *oem_table_id);

#endif
