/*
 * The C face of ioguard's fault injection (hw/ioguard/fault-injection/fault_rules.hh):
 * rules in the language of docs/ioguard-faults.rst, kept per device by an
 * injector that decides, at each point where a device could fail, whether
 * a fault fires, and records each one that does. The devices carry the
 * faults out; ioguard-iommu hands its injector to the engine through
 * IoguardConfig.
 *
 * Thread safety: every function may be called from any thread.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_IOGUARD_FAULT_INJECT_H
#define HW_IOGUARD_FAULT_INJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct IoguardFaults IoguardFaults;

/* Where a rule fires (the values of ioguard::FaultSite). */
enum {
    IOGUARD_FAULT_SITE_TRANSLATE,
    IOGUARD_FAULT_SITE_PAGE_WALK,
    IOGUARD_FAULT_SITE_DTE_FETCH,
    IOGUARD_FAULT_SITE_COMMAND,
    IOGUARD_FAULT_SITE_COMPLETION_WAIT,
    IOGUARD_FAULT_SITE_EVENT_LOG,
    IOGUARD_FAULT_SITE_INTERRUPT,
    IOGUARD_FAULT_SITE_NIC_DESC,
    IOGUARD_FAULT_SITE_NIC_DMA,
    IOGUARD_FAULT_SITE_NIC_LINK,
    IOGUARD_FAULT_SITE_NOTIFIER,
    IOGUARD_FAULT_SITE_DEVICE_IOTLB,
    IOGUARD_FAULT_SITE_PAGE_REQUEST,
    IOGUARD_FAULT_SITE_PAGE_RESPONSE,
    IOGUARD_FAULT_SITES
};

/* What happens (the values of ioguard::FaultAction). */
enum {
    IOGUARD_FAULT_ACTION_FAULT,
    IOGUARD_FAULT_ACTION_DROP,
    IOGUARD_FAULT_ACTION_DELAY,
    IOGUARD_FAULT_ACTION_CORRUPT,
    IOGUARD_FAULT_ACTION_STALE,
    IOGUARD_FAULT_ACTION_OVERFLOW,
    IOGUARD_FAULT_ACTION_STUCK,
    IOGUARD_FAULT_ACTION_DMA_ERROR,
    IOGUARD_FAULT_ACTION_LINK_FLAP,
};

/* What a check is about; which fields count depends on the site. */
typedef struct IoguardFaultHit {
    uint16_t requester;
    uint64_t address;
    bool write;
    int opcode;                 /* a command's opcode; -1 elsewhere */
} IoguardFaultHit;

/* A fault that fired. */
typedef struct IoguardFiredFault {
    uint64_t seq;               /* 1, 2, ... in firing order */
    uint32_t rule;              /* the rule's id */
    uint64_t time_ns;           /* virtual time */
    unsigned site;              /* IOGUARD_FAULT_SITE_* */
    unsigned action;            /* IOGUARD_FAULT_ACTION_* */
    uint64_t delay_ns;          /* delay and link-flap */
    IoguardFaultHit hit;
} IoguardFiredFault;

#define IOGUARD_FAULT_RULE_TEXT_MAX 256

typedef struct IoguardFaultRuleEntry {
    uint32_t id;
    char text[IOGUARD_FAULT_RULE_TEXT_MAX];     /* canonical */
    uint64_t matches;           /* checks it matched */
    uint64_t fired;             /* faults it fired */
} IoguardFaultRuleEntry;

/* The same seed, rules and checks give the same faults. */
IoguardFaults *ioguard_faults_new(uint64_t seed);
void ioguard_faults_free(IoguardFaults *faults);
uint64_t ioguard_faults_seed(IoguardFaults *faults);

/*
 * Adds the rule in text (now_ns starts a "when=after:" delay) and returns
 * its id (1, 2, ...); 0 with a message naming what is wrong in error.
 * only_sites: a bit per IOGUARD_FAULT_SITE_* the device has; a rule for
 * another site is refused.
 */
uint32_t ioguard_faults_add(IoguardFaults *faults, const char *text,
                            uint64_t now_ns, uint32_t only_sites,
                            char *error, size_t error_len);
/* False when there is no rule with that id. */
bool ioguard_faults_remove(IoguardFaults *faults, uint32_t id);
/* Copies up to max rules, in id order; returns how many there are. */
size_t ioguard_faults_rules(IoguardFaults *faults, IoguardFaultRuleEntry *out,
                            size_t max);
/*
 * Copies up to max of the faults fired (the latest IOGUARD_FAULTS_FIRED_MAX
 * are kept), oldest first; returns how many are kept. *dropped: older ones
 * no longer kept.
 */
#define IOGUARD_FAULTS_FIRED_MAX 256
size_t ioguard_faults_fired(IoguardFaults *faults, IoguardFiredFault *out,
                            size_t max, uint64_t *dropped);

/* Whether any rule names site: cheap, for the device's fast path. */
bool ioguard_faults_armed(IoguardFaults *faults, unsigned site);
/* Whether a fault fires at this point of site; if so *fired says which. */
bool ioguard_faults_check(IoguardFaults *faults, unsigned site,
                          const IoguardFaultHit *hit, uint64_t now_ns,
                          IoguardFiredFault *fired);
/* fn is called with each fault fired, outside the injector's lock. */
void ioguard_faults_set_listener(IoguardFaults *faults,
                                 void (*fn)(const IoguardFiredFault *,
                                            void *opaque),
                                 void *opaque);

/*
 * Snapshots: the rules with their counts and generators, and the records,
 * as bytes, malloc()ed, *size set; and back (false, changing nothing, if
 * the state is malformed or was saved with another seed).
 */
uint8_t *ioguard_faults_save(IoguardFaults *faults, size_t *size);
bool ioguard_faults_load(IoguardFaults *faults, const uint8_t *data,
                         size_t size);

/* "translate", "dma-error", ...; "?" for an unknown value. */
const char *ioguard_fault_site_name(unsigned site);
const char *ioguard_fault_action_name(unsigned action);

#ifdef __cplusplus
}
#endif

#endif
