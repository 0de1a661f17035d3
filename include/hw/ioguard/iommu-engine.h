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
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct IoguardIommu IoguardIommu;
struct IoguardFaultRecord;
struct IoguardFaults;

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
    /*
     * Optional, for tracing; called with the engine's lock held, so they
     * may not call back into the engine. A command about to be executed
     * (taken from addr in the command buffer), and each fault record made.
     */
    void (*command_executed)(void *opaque, const uint32_t cmd[4],
                             uint64_t addr);
    void (*fault_recorded)(void *opaque,
                           const struct IoguardFaultRecord *record);
    /*
     * Optional (needed by fault rules that delay a completion): call
     * ioguard_iommu_run_timers() once virtual time reaches deadline_ns.
     * Called with the engine's lock held; a later call replaces an earlier
     * deadline.
     */
    void (*wake_at)(void *opaque, uint64_t deadline_ns);
    /*
     * Optional (needed by hosts that keep translations outside the engine:
     * QEMU's IOMMU notifiers): the IOTLB dropped domain's translations of
     * IOVAs first..last (INVALIDATE_IOMMU_PAGES, PREFETCH_IOMMU_PAGES with
     * Inval=1), or every translation (domain < 0: INVALIDATE_IOMMU_ALL).
     * A changed DTE comes as device_table_changed. Called with the engine's
     * lock held, before a later COMPLETION_WAIT can complete: it may call
     * ioguard_iommu_translating_domain(), nothing else of the engine.
     */
    void (*iommu_pages_invalidated)(void *opaque, int domain, uint64_t first,
                                    uint64_t last);
    /*
     * Optional (for hosts whose devices cache translations themselves:
     * ATS, QEMU's device-IOTLB notifiers): INVALIDATE_IOTLB_PAGES asked
     * devid's device IOTLB to drop its translations of first..last. Called
     * as iommu_pages_invalidated is.
     */
    void (*device_iotlb_invalidated)(void *opaque, uint16_t devid,
                                     uint64_t first, uint64_t last);
    /*
     * Optional (for hosts whose devices make page requests: PCIe PRI):
     * COMPLETE_PPR_REQUEST's answer to devid's page request group, which
     * the IOMMU sends the device as a PRG response (code: IOGUARD_PRG_*,
     * or whatever 4-bit code software wrote). Called with the engine's
     * lock held: it may not call back into the engine (a device retries
     * its DMA later, not from here).
     */
    void (*page_response)(void *opaque, uint16_t devid, bool pasid_valid,
                          uint32_t pasid, uint16_t group, unsigned code);
} IoguardHostOps;

typedef struct IoguardConfig {
    bool intremap;  /* interrupt remapping offered (IVRS IOAPIC entry) */
    bool ga;        /* GASup: 128-bit IRTEs */
    bool xtsup;     /* XTSup: x2APIC destinations */
    /*
     * GTSup, GIOSup: guest translation (GCR3 tables, v2 page tables) for
     * requests without a PASID, through DTE.GIoV (Linux's pgtbl_v2);
     * PPRSup, EPHSup: the PPR log and COMPLETE_PPR_REQUEST
     */
    bool guest_translation;
    bool stats;     /* count per requester (off: the counters stay 0) */
    unsigned fault_records;     /* fault records kept (0: none) */
    bool verifier;  /* flag DMA that only a stale IOTLB entry let through */
    /*
     * STREAMING mappings (docs/ioguard-streaming.rst): translations the
     * prefetcher keeps ahead of a stream; 0 turns the prefetcher off.
     */
    unsigned prefetch_depth;
    /*
     * The latency model: off, or what a DMA read's PCIe round trip and a
     * page-table entry read cost, in nanoseconds of modelled time.
     */
    bool latency_model;
    unsigned round_trip_ns;
    unsigned walk_read_ns;
    /*
     * Fault rules (include/hw/ioguard/fault-inject.h), or NULL for none:
     * owned by the caller, outliving the engine.
     */
    struct IoguardFaults *faults;
} IoguardConfig;

#define IOGUARD_PREFETCH_DEPTH_MAX 256

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

/*
 * The counters, one list per kind. Each IOGUARD_*_COUNTERS(C) calls C(name)
 * for every counter: the structs below, the engine's counters and their
 * sums (core/statistics.{hh,cc}) and query-ioguard-stats
 * (hw/ioguard/iommu-qmp.c) are expanded from these lists, so that a new
 * statistic is a line here, its field in qapi/ioguard.json (the same name
 * with '-' for '_') and the line of the engine that counts it. HMP's
 * "info ioguard-stats" prints sentences of its own and names the counters
 * it knows.
 */

/* Counted per requester, summed IOMMU-wide. */
#define IOGUARD_REQUESTER_COUNTERS(C)                                       \
    C(iotlb_hits)           /* translations answered from the IOTLB */      \
    C(iotlb_misses)         /* the others: each one page walk */            \
    C(page_walk_levels)     /* page-table entries read by the walks */      \
    C(guest_walks)          /* of the walks, those of guest (v2) tables */  \
    C(page_requests)        /* PCIe page requests (PRI) the device made */  \
    C(page_responses)       /* COMPLETE_PPR_REQUEST commands naming it */   \
    C(passthrough)          /* translations answered as identity */         \
    C(faults)               /* translations refused */                      \
    C(interrupts_remapped)                                                  \
    C(interrupts_blocked)

/*
 * What the STREAMING prefetcher did: translations it put into the IOTLB
 * (issued), and what became of them: used by a DMA (each a page walk the
 * DMA did not wait for), evicted or invalidated before any use. walks: the
 * prefetcher's own walks, each reading a run of neighbouring entries.
 */
#define IOGUARD_PREFETCH_COUNTERS(C)                                        \
    C(issued)                                                               \
    C(used)                                                                 \
    C(evicted_unused)                                                       \
    C(invalidated_unused)                                                   \
    C(walks)                                                                \
    C(walk_levels)          /* page-table entries those walks read */

/*
 * Modelled DMA time (latency model on): see docs/ioguard-streaming.rst.
 * Per requester only.
 */
#define IOGUARD_MODEL_COUNTERS(C)                                           \
    C(reads)                /* DMA reads (one per page touched) */          \
    C(pipelined_reads)      /* of those, continuing a STREAMING stream */   \
    C(read_ns)              /* their modelled time */                       \
    C(writes)                                                               \
    C(write_ns)

/* IOMMU-wide only. */
#define IOGUARD_IOMMU_COUNTERS(C)                                           \
    C(events_logged)                                                        \
    C(events_dropped)       /* log disabled, full or at a bad address */

#define IOGUARD_COUNTER_FIELD(name) uint64_t name;

typedef struct IoguardPrefetchStats {
    IOGUARD_PREFETCH_COUNTERS(IOGUARD_COUNTER_FIELD)
} IoguardPrefetchStats;

typedef struct IoguardModelStats {
    IOGUARD_MODEL_COUNTERS(IOGUARD_COUNTER_FIELD)
} IoguardModelStats;

/* IOMMU-wide, since creation or the last ioguard_iommu_reset_stats(). */
typedef struct IoguardStats {
    IOGUARD_REQUESTER_COUNTERS(IOGUARD_COUNTER_FIELD)
    IOGUARD_IOMMU_COUNTERS(IOGUARD_COUNTER_FIELD)
    /* Derived when read: */
    uint64_t translations;      /* hits, misses, passthrough and refused */
    uint64_t page_walks;        /* one per IOTLB miss */
    uint64_t commands;          /* the sum of commands_by_opcode */
    uint64_t invalidations;     /* of those, INVALIDATE_* commands */
    uint64_t requesters;        /* requester IDs that made DMA */
    IoguardPrefetchStats prefetch;
    uint64_t events_by_type[IOGUARD_EVENT_TYPES];   /* logged or dropped */
    uint64_t commands_by_opcode[IOGUARD_COMMAND_OPCODES];
} IoguardStats;

/* The same, for one requester ID (bus << 8 | devfn). */
typedef struct IoguardRequesterStats {
    uint16_t devid;
    IOGUARD_REQUESTER_COUNTERS(IOGUARD_COUNTER_FIELD)
    uint64_t translations;
    uint64_t page_walks;
    uint64_t events_by_type[IOGUARD_EVENT_TYPES];   /* events naming devid */
    IoguardPrefetchStats prefetch;
    IoguardModelStats model;
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
 * An ATS translation request with a PASID prefix (PCIe PASID: a device
 * with shared virtual addressing), through the PASID's guest tables;
 * privileged: the prefix asks for supervisor access. A page the tables do
 * not give comes back with perm NONE and no event (the device may send a
 * page request); malformed tables are events, and a DTE without guest
 * tables refuses it with INVALID_DEVICE_REQUEST.
 */
void ioguard_iommu_translate_pasid(IoguardIommu *iommu, uint16_t devid,
                                   uint32_t pasid, bool privileged,
                                   uint64_t iova, unsigned perm,
                                   IoguardTranslation *out);

/*
 * A PCIe page request (PRI): the device could not translate address (ATS
 * said no) and asks software to make the page present.
 */
typedef struct IoguardPageRequest {
    uint16_t devid;
    bool pasid_valid;       /* the request carries a PASID (GN) */
    uint32_t pasid;
    uint64_t address;       /* bits 11:0 are ignored */
    unsigned perm;          /* IOGUARD_PERM_READ and/or _WRITE */
    bool exec;
    bool privileged;        /* a supervisor request (US=0) */
    uint16_t group;         /* page request group index, 9 bits */
    bool last;              /* the last request of its group */
} IoguardPageRequest;

/* PRG response codes (PCIe): what COMPLETE_PPR_REQUEST's status means. */
#define IOGUARD_PRG_SUCCESS             0x0
#define IOGUARD_PRG_INVALID_REQUEST     0x1
#define IOGUARD_PRG_FAILURE             0xf

/* What became of a page request. */
enum {
    /* in the PPR log: software answers with COMPLETE_PPR_REQUEST */
    IOGUARD_PAGE_REQUEST_LOGGED,
    /* refused with an INVALID_PPR_REQUEST event: software answers it */
    IOGUARD_PAGE_REQUEST_INVALID,
    /*
     * nobody will answer: no PPR support or the IOMMU off, the PPR log
     * off, full (PPROverflow) or not in RAM. The device takes it as a
     * Response Failure.
     */
    IOGUARD_PAGE_REQUEST_FAILED,
};
unsigned ioguard_iommu_page_request(IoguardIommu *iommu,
                                    const IoguardPageRequest *request);

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

/*
 * True, with *domain, when DMA from devid is translated through page tables
 * (IOMMU on, a legal DTE with V=1, TV=1 and Mode > 0): whose invalidations
 * concern it. Like ioguard_iommu_dma_is_identity(), it never logs an event
 * and may be called from the host's callbacks.
 */
bool ioguard_iommu_translating_domain(IoguardIommu *iommu, uint16_t devid,
                                      uint16_t *domain);

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

/*
 * Host STREAMING policy: DMA of a requester, to IOVAs first..last, is
 * STREAMING whatever the guest's tables say. A rule equal to an existing
 * one is not added twice; remove takes the exact rule.
 */
typedef struct IoguardStreamingRule {
    uint16_t devid;
    uint64_t first;
    uint64_t last;
} IoguardStreamingRule;

#define IOGUARD_STREAMING_RULES_MAX 64

/*
 * Parses "bb:dd.f[@first-last]" rules separated by '+', e.g.
 * "00:05.0+01:00.0@0x100000-0x1fffff" (an empty text is no rules). Returns
 * the number of rules, or -1 with a message naming the bad part in error.
 */
int ioguard_parse_streaming_rules(const char *text, IoguardStreamingRule *out,
                                  size_t max, char *error, size_t error_len);
/* False when the rule is malformed (first > last) or the table is full. */
bool ioguard_iommu_add_streaming_rule(IoguardIommu *iommu,
                                      const IoguardStreamingRule *rule);
/* False when there was no such rule. */
bool ioguard_iommu_remove_streaming_rule(IoguardIommu *iommu,
                                         const IoguardStreamingRule *rule);
/* Copies up to max rules into out; returns how many there are. */
size_t ioguard_iommu_streaming_rules(IoguardIommu *iommu,
                                     IoguardStreamingRule *out, size_t max);
/* Whether the guest has set IOGUARD_CONTROL_STREAMING_EN. */
bool ioguard_iommu_guest_streaming_enabled(IoguardIommu *iommu);

/*
 * The fault rules (IoguardConfig.faults) changed: a command buffer that a
 * rule held stuck moves on, and identity DMA is asked about again
 * (device_table_changed), as a rule may now want to see it.
 */
void ioguard_iommu_faults_changed(IoguardIommu *iommu);
/* Completions a fault rule delayed whose time has come (wake_at). */
void ioguard_iommu_run_timers(IoguardIommu *iommu);

/*
 * Snapshots and migration: the engine's state (registers, completions a
 * fault rule delayed, host STREAMING rules; not the caches, which a
 * restored engine refills) as bytes, malloc()ed, *size set; and back.
 * Loading checks every field and returns false, changing nothing, on a
 * malformed state. After loading, device_table_changed(-1) has been called.
 */
uint8_t *ioguard_iommu_save_state(IoguardIommu *iommu, size_t *size);
bool ioguard_iommu_load_state(IoguardIommu *iommu, const uint8_t *data,
                              size_t size);

/*
 * Fault records: every event the IOMMU generated, and every finding of the
 * DMA verifier, with why. Names: ioguard_fault_reason_name().
 */
enum {
    IOGUARD_FAULT_BEYOND_DEVICE_TABLE = 1,  /* requester ID past the table */
    IOGUARD_FAULT_DEVICE_TABLE_NOT_IN_RAM,
    IOGUARD_FAULT_ILLEGAL_DEVICE_TABLE_ENTRY,   /* reserved bits set */
    IOGUARD_FAULT_DEVICE_TABLE_PERMISSION,  /* untranslated, IR/IW clear */
    IOGUARD_FAULT_NOT_PRESENT,              /* no present PTE for the IOVA */
    IOGUARD_FAULT_OUT_OF_RANGE,             /* IOVA beyond what Mode covers */
    IOGUARD_FAULT_PAGE_TABLE_RESERVED,      /* reserved bits or encoding */
    IOGUARD_FAULT_PAGE_TABLE_NOT_IN_RAM,
    IOGUARD_FAULT_PERMISSION,               /* the PTEs forbid the access */
    IOGUARD_FAULT_INTERRUPT_INDEX_BEYOND_TABLE,
    IOGUARD_FAULT_INTERRUPT_TABLE_NOT_IN_RAM,
    IOGUARD_FAULT_INTERRUPT_NOT_REMAPPED,   /* IRTE RemapEn=0 or GuestMode */
    IOGUARD_FAULT_ILLEGAL_COMMAND,
    IOGUARD_FAULT_COMMAND_NOT_IN_RAM,
    IOGUARD_FAULT_COMPLETION_STORE_NOT_IN_RAM,
    /* DMA verifier findings: DMA a stale IOTLB entry let through. */
    IOGUARD_FAULT_USE_AFTER_UNMAP,          /* the IOVA is no longer mapped */
    IOGUARD_FAULT_STALE_TRANSLATION,        /* it maps elsewhere, or less */
    IOGUARD_FAULT_INJECTED,                 /* a fault rule made it */
    /* DMA verifier: a device used an ATS translation of an IOVA after an
     * INVALIDATE_IOTLB_PAGES for it that covered the IOVA, and the tables
     * no longer map it so (ioguard_iommu_ats_used) */
    IOGUARD_FAULT_ATS_USE_AFTER_INVALIDATION,
    /* a page request the IOMMU could not log for software: PPREn or the
     * DTE's PPR bit clear, no valid DTE, a PASID beyond PASmax */
    IOGUARD_FAULT_INVALID_PAGE_REQUEST,
    /* a request with a PASID the DTE has no guest tables for (GV clear,
     * GTEn clear) or beyond 16 bits */
    IOGUARD_FAULT_INVALID_DEVICE_REQUEST,
    IOGUARD_FAULT_REASONS
};

/* What became of the event of a fault record. */
enum {
    IOGUARD_DELIVERY_LOGGED,        /* written to the guest's event log */
    IOGUARD_DELIVERY_LOG_FULL,      /* lost: the log overflowed */
    IOGUARD_DELIVERY_LOG_DISABLED,  /* lost: EventLogEn was clear */
    IOGUARD_DELIVERY_LOG_STOPPED,   /* lost: the log stopped after an
                                     * overflow or error, not restarted */
    IOGUARD_DELIVERY_LOG_NOT_IN_RAM,    /* lost: the log is not in RAM */
    IOGUARD_DELIVERY_NOT_REPORTED,  /* a verifier finding: no event exists */
    IOGUARD_DELIVERY_INJECTED,      /* lost: a fault rule dropped it or
                                     * overflowed the log */
};

typedef struct IoguardFaultRecord {
    uint64_t seq;           /* 1, 2, ... since the IOMMU was created */
    uint64_t time_ns;       /* virtual time */
    unsigned reason;        /* IOGUARD_FAULT_* */
    unsigned delivery;      /* IOGUARD_DELIVERY_* */
    unsigned event_type;    /* EVENT_TYPE_*; 0 for verifier findings */
    unsigned event_flags;   /* EVENT_FLAG_* of the event */
    int32_t devid;          /* the requester; -1 for command errors */
    int32_t domain;         /* -1 when the event names no domain */
    int32_t pasid;          /* -1 when it names no PASID (GN=0) */
    uint64_t address;       /* the IOVA (or MSI address), or ... */
    bool address_is_iova;   /* ... false: a table, command or store address */
    unsigned access;        /* IOGUARD_PERM_READ or _WRITE; NONE: commands */
    bool interrupt;         /* an interrupt message, not DMA */
    /* Verifier findings only: where the stale IOTLB entry sent the DMA, and
     * what a fresh walk of the guest's tables says now. */
    uint64_t stale_target;
    unsigned stale_perm;
    bool now_mapped;
    uint64_t current_target;
    unsigned current_perm;
} IoguardFaultRecord;

/*
 * Names in QMP spelling (core/names.cc), for the monitor and tracing:
 * "not-present", "use-after-unmap", ... NULL for a code without a name,
 * except the delivery ("?") and the access (any value has one).
 */
const char *ioguard_fault_reason_name(unsigned reason);
const char *ioguard_event_name(unsigned type);          /* EVENT_TYPE_* */
const char *ioguard_command_name(unsigned opcode);      /* CMD_* */
const char *ioguard_delivery_name(unsigned delivery);   /* IOGUARD_DELIVERY_* */
const char *ioguard_access_name(unsigned perm);         /* IOGUARD_PERM_* */

/*
 * Copies up to max of the records held, oldest first, and returns how many
 * are held. *overwritten: records pushed out by newer ones since the last
 * clear.
 */
size_t ioguard_iommu_get_fault_records(IoguardIommu *iommu,
                                       IoguardFaultRecord *out, size_t max,
                                       uint64_t *overwritten);
void ioguard_iommu_clear_fault_records(IoguardIommu *iommu);

/* How the IOMMU treats DMA of one requester (its DTE as in guest memory). */
enum {
    IOGUARD_DMA_UNTRANSLATED,   /* IOMMU off, or DTE V=0: all of memory */
    IOGUARD_DMA_PASSTHROUGH,    /* DTE without translation, gated by IR/IW */
    IOGUARD_DMA_TRANSLATED,     /* through the DTE's page tables */
    IOGUARD_DMA_BLOCKED,        /* DTE not readable or illegal: all faults */
    IOGUARD_DMA_GUEST_TRANSLATED,   /* through the DTE's guest (v2) tables */
};

/* A DMA address range and where it lands in guest-physical memory. */
typedef struct IoguardMapping {
    uint64_t iova;      /* first byte */
    uint64_t last;      /* last byte */
    uint64_t target;    /* guest-physical address of iova */
    unsigned perm;      /* IOGUARD_PERM_READ | _WRITE, never NONE */
} IoguardMapping;

typedef struct IoguardMappingWalk {
    unsigned dma;           /* IOGUARD_DMA_* */
    bool truncated;         /* stopped early: ask again from next_iova */
    uint64_t next_iova;
    uint64_t tables_read;
    uint64_t malformed;     /* entries the translation walk would refuse */
} IoguardMappingWalk;

/*
 * What devid can reach right now, from a fresh read of its DTE and page
 * tables in guest memory (no cached state): fn gets the ranges from start
 * upwards, coalesced, in IOVA order; at most max_ranges of them after
 * reading at most max_tables tables. For untranslated and passthrough DMA
 * fn gets one identity range (none if IR=IW=0).
 *
 * pasid -1: requests without a PASID (through PASID 0's guest tables if
 * the DTE has GIoV, as user requests). Else requests with that PASID, as
 * ioguard_iommu_translate_pasid() translates them: privileged ones
 * (supervisor) or user ones; result->dma says how they go.
 */
void ioguard_iommu_walk_mappings(IoguardIommu *iommu, uint16_t devid,
                                 int32_t pasid, bool privileged,
                                 uint64_t start, uint64_t max_ranges,
                                 uint64_t max_tables,
                                 void (*fn)(const IoguardMapping *,
                                            void *opaque),
                                 void *opaque, IoguardMappingWalk *result);

/*
 * The page holding iova, as devid's tables say now (a fresh read of the
 * DTE and one entry per level, no cached state): true with *m filled (its
 * perm never NONE) if the DMA is translated and the page reaches memory.
 * What notifier users are checked against, record by record.
 */
bool ioguard_iommu_lookup_page(IoguardIommu *iommu, uint16_t devid,
                               uint64_t iova, IoguardMapping *m);

/*
 * The same walk by page-table entry, not coalesced: each present leaf entry
 * that reaches memory is one range (an aligned power of two, whole even if
 * it begins below start) up to the last entry that begins at or below end,
 * as QEMU's MAP notifier users (vfio) are told of mappings. Untranslated
 * and passthrough DMA have no entries: fn gets none.
 */
void ioguard_iommu_walk_page_entries(IoguardIommu *iommu, uint16_t devid,
                                     uint64_t start, uint64_t end,
                                     uint64_t max_entries,
                                     uint64_t max_tables,
                                     void (*fn)(const IoguardMapping *,
                                                void *opaque),
                                     void *opaque, IoguardMappingWalk *result);

/*
 * ATS and the DMA verifier (verifier=on). A device with its own
 * translation cache notes the generation of the device-IOTLB invalidations
 * when the IOMMU gives it a translation, and says when it uses one: a use
 * after an INVALIDATE_IOTLB_PAGES for the device that covered the IOVA,
 * while the tables no longer map it so (for a translation of a request
 * with a PASID, pasid >= 0: that PASID's tables, as a privileged request
 * or a user one), is a finding (a fault record,
 * IOGUARD_FAULT_ATS_USE_AFTER_INVALIDATION, and a LOG_GUEST_ERROR line).
 * Without the verifier the generation is 0 and uses are not looked at.
 */
uint64_t ioguard_iommu_device_iotlb_generation(IoguardIommu *iommu);
void ioguard_iommu_ats_used(IoguardIommu *iommu, uint16_t devid,
                            int32_t pasid, bool privileged, uint64_t iova,
                            uint64_t target, unsigned access,
                            uint64_t generation);

/* One requester's device-table entry as in guest memory, decoded. */
typedef struct IoguardDeviceInfo {
    bool iommu_enabled;
    bool ga_enabled;            /* 128-bit IRTEs in use (GAEn) */
    bool beyond_table;          /* devid is past the device table's size */
    bool readable;              /* the entry is in RAM */
    uint64_t dte_address;
    uint64_t raw[4];
    /* the IOMMU's cached copy differs from memory: the guest changed the
     * entry without INVALIDATE_DEVTAB_ENTRY */
    bool cached_copy_stale;
    unsigned dma;               /* IOGUARD_DMA_* */
    bool illegal;               /* reserved bits or encodings set */
    bool valid, translation_valid, read_allowed, write_allowed;
    unsigned mode;
    uint64_t page_table_root;
    uint16_t domain_id;
    bool interrupt_valid;
    unsigned interrupt_table_entries;
    uint64_t interrupt_table_root;
    unsigned interrupt_control; /* IntCtl: 0 abort, 1 pass, 2 remap */
    bool init_pass, extint_pass, nmi_pass, lint0_pass, lint1_pass;
    /* Guest translation (they count with guest-translation=on and GTEn) */
    bool guest_valid, guest_io_valid, ppr;      /* GV, GIoV, PPR */
    unsigned gcr3_levels;       /* GLX: GCR3 table levels - 1 */
    uint64_t gcr3_table_root;
    unsigned guest_paging_levels;   /* 4 or 5; 0: a reserved encoding */
} IoguardDeviceInfo;

void ioguard_iommu_read_device(IoguardIommu *iommu, uint16_t devid,
                               IoguardDeviceInfo *info);

/* One interrupt remapping table entry, decoded. */
typedef struct IoguardIrte {
    unsigned index;
    bool remap_enabled;
    bool suppress_fault;
    bool guest_mode;
    bool dest_logical;
    unsigned int_type;          /* delivery mode */
    uint32_t destination;       /* APIC ID */
    uint8_t vector;
} IoguardIrte;

/*
 * Calls fn for each entry of devid's interrupt remapping table that is not
 * all zeros, in the format in use (GAEn). Returns false if the table (or
 * the DTE) could not be read.
 */
bool ioguard_iommu_for_each_irte(IoguardIommu *iommu, uint16_t devid,
                                 void (*fn)(const IoguardIrte *, void *opaque),
                                 void *opaque);

/* One valid entry of a GCR3 table: a PASID and its guest CR3. */
typedef struct IoguardPasidEntry {
    uint32_t pasid;
    uint64_t cr3;               /* the v2 tables' root (guest physical) */
    bool reserved;              /* reserved bits set: unusable */
} IoguardPasidEntry;

/*
 * Calls fn for the valid entries of devid's GCR3 table in PASID order, at
 * most max of them; false if the DTE has no GCR3 table (GV clear) or the
 * table is reached through host tables (DTE Mode 1-6), which this does
 * not walk. A table entry outside RAM ends the walk.
 */
bool ioguard_iommu_for_each_pasid(IoguardIommu *iommu, uint16_t devid,
                                  unsigned max,
                                  void (*fn)(const IoguardPasidEntry *,
                                             void *opaque),
                                  void *opaque);

#ifdef __cplusplus
}
#endif

#endif
