/*
 * The C face of the ioguard IOMMU engine (hw/ioguard/core, C++).
 *
 * The engine owns the architected behaviour: registers, device table,
 * page walks, IOTLB, commands, event log, interrupt remapping. It reaches
 * guest memory, interrupts and time only through IoguardHostOps, which the
 * QEMU glue implements and the unit tests fake.
 *
 * Thread safety: ioguard_iommu_translate() and ioguard_iommu_remap_msi()
 * may be called from any thread at once; the MMIO entry points are
 * serialised by the engine itself.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_IOGUARD_IOMMU_ENGINE_H
#define HW_IOGUARD_IOMMU_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct IoguardIommu IoguardIommu;

typedef struct IoguardHostOps {
    /*
     * Read or write guest-physical RAM. Return false if any byte of the
     * range is not RAM (MMIO, unassigned): the engine turns that into the
     * architected hardware-error event.
     */
    bool (*read_ram)(void *opaque, uint64_t addr, void *buf, uint64_t len);
    bool (*write_ram)(void *opaque, uint64_t addr, const void *buf,
                      uint64_t len);
    /* Raise the IOMMU's own interrupt (event log, completion wait). */
    void (*raise_interrupt)(void *opaque);
    /*
     * Deliver an interrupt message directly to the CPUs: the IOMMU's own
     * interrupt in x2APIC mode (IntCapXTEn), programmed through INTCAPXT.
     */
    void (*deliver_msi)(void *opaque, uint64_t address, uint32_t data);
    /* A guest programming mistake, worth a LOG_GUEST_ERROR line. */
    void (*guest_error)(void *opaque, const char *message);
    /* INVALIDATE_INTERRUPT_TABLE for devid (or all of them: devid < 0). */
    void (*interrupt_table_invalidated)(void *opaque, int devid);
    /*
     * What ioguard_iommu_dma_is_identity() answers for devid (all of them:
     * devid < 0) may have changed: a DTE invalidation, the IOMMU switched
     * on or off, a new device table. Called with the engine's lock held:
     * it may call ioguard_iommu_dma_is_identity(), nothing else.
     */
    void (*device_table_changed)(void *opaque, int devid);
    /* Virtual time in nanoseconds (for event de-duplication). */
    uint64_t (*now_ns)(void *opaque);
} IoguardHostOps;

typedef struct IoguardConfig {
    bool intremap;  /* interrupt remapping offered (IVRS IOAPIC entry) */
    bool ga;        /* GASup: 128-bit IRTEs */
    bool xtsup;     /* XTSup: x2APIC destinations */
    bool stats;     /* count per requester (off: the counters stay 0) */
} IoguardConfig;

enum {
    IOGUARD_PERM_NONE = 0,
    IOGUARD_PERM_READ = 1,      /* same values as QEMU's IOMMU_RO/IOMMU_WO */
    IOGUARD_PERM_WRITE = 2,
    IOGUARD_PERM_RW = 3,
};

typedef struct IoguardTranslation {
    uint64_t translated_addr;   /* page base in guest-physical space */
    uint64_t addr_mask;         /* page size - 1 */
    unsigned perm;              /* IOGUARD_PERM_*; NONE means blocked */
} IoguardTranslation;

typedef struct IoguardMsi {
    uint64_t address;
    uint32_t data;
} IoguardMsi;

/* Event types (EVENT_TYPE_*) and command opcodes (CMD_*) are 4 bits. */
#define IOGUARD_EVENT_TYPES 16
#define IOGUARD_COMMAND_OPCODES 16

/* IOMMU-wide, since creation or the last ioguard_iommu_reset_stats(). */
typedef struct IoguardStats {
    uint64_t translations;
    uint64_t iotlb_hits;
    uint64_t iotlb_misses;
    uint64_t page_walks;
    uint64_t page_walk_levels;  /* page-table entries read by the walks */
    uint64_t passthrough;       /* translations answered as identity */
    uint64_t faults;            /* translations refused */
    uint64_t events_logged;
    uint64_t events_dropped;    /* log disabled, full or at a bad address */
    uint64_t commands;
    uint64_t invalidations;     /* INVALIDATE_* commands */
    uint64_t interrupts_remapped;
    uint64_t interrupts_blocked;
    uint64_t requesters;        /* requester IDs that made DMA */
    uint64_t events_by_type[IOGUARD_EVENT_TYPES];   /* logged or dropped */
    uint64_t commands_by_opcode[IOGUARD_COMMAND_OPCODES];
} IoguardStats;

/* The same, for one requester ID (bus << 8 | devfn). */
typedef struct IoguardRequesterStats {
    uint16_t devid;
    uint64_t translations;
    uint64_t iotlb_hits;
    uint64_t iotlb_misses;
    uint64_t page_walks;
    uint64_t page_walk_levels;
    uint64_t passthrough;
    uint64_t faults;
    uint64_t interrupts_remapped;
    uint64_t interrupts_blocked;
    uint64_t events_by_type[IOGUARD_EVENT_TYPES];   /* events naming devid */
} IoguardRequesterStats;

IoguardIommu *ioguard_iommu_new(const IoguardHostOps *ops, void *opaque,
                                const IoguardConfig *config);
void ioguard_iommu_free(IoguardIommu *iommu);
void ioguard_iommu_reset(IoguardIommu *iommu);

uint64_t ioguard_iommu_mmio_read(IoguardIommu *iommu, uint64_t offset,
                                 unsigned size);
void ioguard_iommu_mmio_write(IoguardIommu *iommu, uint64_t offset,
                              uint64_t value, unsigned size);

/* The Extended Feature Register value, also copied into the IVRS. */
uint64_t ioguard_iommu_efr(const IoguardIommu *iommu);

/*
 * Translate one DMA access (perm = IOGUARD_PERM_READ or _WRITE; NONE looks
 * up without logging a fault). A refused access comes back with perm NONE
 * and has been logged.
 */
void ioguard_iommu_translate(IoguardIommu *iommu, uint16_t devid,
                             uint64_t iova, unsigned perm,
                             IoguardTranslation *out);

/*
 * Remap an MSI write (address in 0xfee00000..0xfeefffff) made by devid.
 * Returns true and fills *out when it is to be delivered; false when the
 * IOMMU blocked it (and logged why).
 */
bool ioguard_iommu_remap_msi(IoguardIommu *iommu, uint16_t devid,
                             const IoguardMsi *in, IoguardMsi *out);

/*
 * True when DMA from devid passes untranslated with full access (IOMMU off,
 * DTE V=0, or a passthrough DTE with IR=IW=1), so that the host may skip
 * ioguard_iommu_translate() for it until device_table_changed says
 * otherwise. Never logs an event: a DTE it cannot read is "not identity",
 * and the DMA path reports it.
 */
bool ioguard_iommu_dma_is_identity(IoguardIommu *iommu, uint16_t devid);

void ioguard_iommu_get_stats(IoguardIommu *iommu, IoguardStats *stats);

/*
 * Calls fn for every requester ID with DMA, interrupts or events since the
 * last reset, in increasing order.
 */
void ioguard_iommu_for_each_requester(IoguardIommu *iommu,
                                      void (*fn)(const IoguardRequesterStats *,
                                                 void *opaque),
                                      void *opaque);

/* False (and zeroes) if devid had no activity since the last reset. */
bool ioguard_iommu_get_requester_stats(IoguardIommu *iommu, uint16_t devid,
                                       IoguardRequesterStats *stats);

/* All counters back to zero. */
void ioguard_iommu_reset_stats(IoguardIommu *iommu);

#ifdef __cplusplus
}
#endif

#endif
