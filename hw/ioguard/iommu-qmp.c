/*
 * ioguard-iommu: what the IOMMU sees, for QMP (qapi/ioguard.json) and HMP.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-ioguard.h"
#include "qobject/qdict.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_bus.h"
#include "hw/ioguard/amd-vi-regs.h"
#include "hw/ioguard/iommu-engine.h"
#include "hw/ioguard/iommu.h"

/* The nonzero counts, named; codes without a name keep their number. */
static IoguardCountList *ioguard_counts(const uint64_t *counts,
                                        const char *(*name_of)(unsigned),
                                        int n)
{
    IoguardCountList *list = NULL;

    for (int i = n - 1; i >= 0; i--) {
        if (counts[i]) {
            IoguardCount *c = g_new0(IoguardCount, 1);
            const char *name = name_of(i);

            c->name = name ? g_strdup(name) : g_strdup_printf("code-%d", i);
            c->count = counts[i];
            QAPI_LIST_PREPEND(list, c);
        }
    }
    return list;
}

/* ---- the IOMMUs and their requester IDs ---- */

static int ioguard_collect(Object *obj, void *opaque)
{
    GSList **iommus = opaque;
    IoguardIommuState *s = (IoguardIommuState *)
        object_dynamic_cast(obj, TYPE_IOGUARD_IOMMU);

    if (s && s->engine) {
        *iommus = g_slist_append(*iommus, s);
    }
    return 0;
}

/* Every realized ioguard-iommu, in QOM order. */
static GSList *ioguard_iommus(void)
{
    GSList *iommus = NULL;

    object_child_foreach_recursive(object_get_root(), ioguard_collect,
                                   &iommus);
    return iommus;
}

IoguardIommuState *ioguard_the_iommu(Error **errp)
{
    g_autoptr(GSList) iommus = ioguard_iommus();

    if (!iommus) {
        error_setg(errp, "there is no ioguard-iommu in this machine");
        return NULL;
    }
    return iommus->data;
}


char *ioguard_requester_name(uint16_t devid)
{
    return g_strdup_printf("%02x:%02x.%x", PCI_BUS_NUM(devid),
                           PCI_SLOT(devid), PCI_FUNC(devid));
}

static PCIDevice *ioguard_requester_device(IoguardIommuState *s,
                                           uint16_t devid)
{
    PCIBus *root = pci_get_bus(PCI_DEVICE(&s->pci));

    return pci_find_device(root, PCI_BUS_NUM(devid), devid & 0xff);
}

/* The QOM path of the PCI device with requester ID devid, or NULL. */
static char *ioguard_requester_qom_path(IoguardIommuState *s, uint16_t devid)
{
    PCIDevice *dev = ioguard_requester_device(s, devid);

    return dev ? object_get_canonical_path(OBJECT(dev)) : NULL;
}

bool ioguard_parse_requester(IoguardIommuState *s, const char *str,
                             uint16_t *devid, Error **errp)
{
    unsigned bus, dev, fn;

    if (strlen(str) != 7 || str[2] != ':' || str[5] != '.' ||
        !g_ascii_isxdigit(str[0]) || !g_ascii_isxdigit(str[1]) ||
        !g_ascii_isxdigit(str[3]) || !g_ascii_isxdigit(str[4]) ||
        str[6] < '0' || str[6] > '7' ||
        sscanf(str, "%2x:%2x.%1u", &bus, &dev, &fn) != 3 || dev > 0x1f) {
        error_setg(errp, "requester '%s' is not bus:device.function "
                   "(hex, e.g. 00:03.0)", str);
        return false;
    }
    *devid = PCI_BUILD_BDF(bus, PCI_DEVFN(dev, fn));
    if (*devid != IOGUARD_IOAPIC_DEVID && !ioguard_requester_device(s, *devid)) {
        error_setg(errp, "no PCI device has requester ID %s", str);
        return false;
    }
    return true;
}

/* ---- query-ioguard-stats ---- */

typedef struct {
    IoguardIommuState *iommu;
    IoguardRequesterStatsInfoList **tail;
} RequesterWalk;

static IoguardPrefetchInfo *ioguard_prefetch_info(const IoguardPrefetchStats *p)
{
    IoguardPrefetchInfo *info = g_new0(IoguardPrefetchInfo, 1);

#define IOGUARD_COPY(name) info->name = p->name;
    IOGUARD_PREFETCH_COUNTERS(IOGUARD_COPY)
#undef IOGUARD_COPY
    return info;
}

static void ioguard_add_requester(const IoguardRequesterStats *st,
                                  void *opaque)
{
    RequesterWalk *w = opaque;
    IoguardRequesterStatsInfo *r = g_new0(IoguardRequesterStatsInfo, 1);

    r->requester = ioguard_requester_name(st->devid);
    r->qom_path = ioguard_requester_qom_path(w->iommu, st->devid);
#define IOGUARD_COPY(name) r->name = st->name;
    IOGUARD_REQUESTER_COUNTERS(IOGUARD_COPY)
#undef IOGUARD_COPY
    r->translations = st->translations;
    r->page_walks = st->page_walks;
    r->events = ioguard_counts(st->events_by_type, ioguard_event_name,
                               IOGUARD_EVENT_TYPES);
    r->prefetch = ioguard_prefetch_info(&st->prefetch);
    if (w->iommu->latency_model) {
        r->model = g_new0(IoguardModelInfo, 1);
#define IOGUARD_COPY(name) r->model->name = st->model.name;
        IOGUARD_MODEL_COUNTERS(IOGUARD_COPY)
#undef IOGUARD_COPY
    }
    QAPI_LIST_APPEND(w->tail, r);
}

static IoguardStatsInfo *ioguard_stats_of(IoguardIommuState *s, bool reset)
{
    IoguardStatsInfo *info = g_new0(IoguardStatsInfo, 1);
    RequesterWalk walk = { .iommu = s, .tail = &info->requesters };
    IoguardStats st;

    /* Requesters first: the totals are their sums, so read them after. */
    ioguard_iommu_for_each_requester(s->engine, ioguard_add_requester, &walk);
    ioguard_iommu_get_stats(s->engine, &st);
    if (reset) {
        ioguard_iommu_reset_stats(s->engine);
    }
    info->qom_path = object_get_canonical_path(OBJECT(s));
    info->statistics = s->stats;
#define IOGUARD_COPY(name) info->name = st.name;
    IOGUARD_REQUESTER_COUNTERS(IOGUARD_COPY)
    IOGUARD_IOMMU_COUNTERS(IOGUARD_COPY)
#undef IOGUARD_COPY
    info->translations = st.translations;
    info->page_walks = st.page_walks;
    info->identity_requesters = ioguard_identity_requesters(s);
    info->events = ioguard_counts(st.events_by_type, ioguard_event_name,
                                  IOGUARD_EVENT_TYPES);
    info->commands = ioguard_counts(st.commands_by_opcode,
                                    ioguard_command_name,
                                    IOGUARD_COMMAND_OPCODES);
    info->invalidations = st.invalidations;
    info->prefetch = ioguard_prefetch_info(&st.prefetch);
    return info;
}

IoguardStatsInfoList *qmp_query_ioguard_stats(bool has_reset, bool reset,
                                              Error **errp)
{
    IoguardStatsInfoList *list = NULL, **tail = &list;
    g_autoptr(GSList) iommus = ioguard_iommus();

    for (GSList *l = iommus; l; l = l->next) {
        QAPI_LIST_APPEND(tail, ioguard_stats_of(l->data, has_reset && reset));
    }
    return list;
}

/* ---- query-ioguard-faults ---- */

static IoguardFaultInfo *ioguard_fault_info(IoguardIommuState *s,
                                            const IoguardFaultRecord *r)
{
    IoguardFaultInfo *f = g_new0(IoguardFaultInfo, 1);
    const char *event = ioguard_event_name(r->event_type);

    f->seq = r->seq;
    f->time_ns = r->time_ns;
    f->reason = g_strdup(ioguard_fault_reason_name(r->reason) ?: "?");
    if (r->event_type) {
        f->event = event ? g_strdup(event)
                         : g_strdup_printf("code-%u", r->event_type);
    }
    if (r->devid >= 0) {
        f->requester = ioguard_requester_name(r->devid);
        f->qom_path = ioguard_requester_qom_path(s, r->devid);
    }
    if (r->pasid >= 0) {
        f->has_pasid = true;
        f->pasid = r->pasid;
    }
    if (r->domain >= 0) {
        f->has_domain = true;
        f->domain = r->domain;
    }
    if (r->address_is_iova) {
        f->has_iova = true;
        f->iova = r->address;
    } else {
        f->has_address = true;
        f->address = r->address;
    }
    f->access = g_strdup(ioguard_access_name(r->access));
    f->interrupt = r->interrupt;
    f->delivery = g_strdup(ioguard_delivery_name(r->delivery));
    if (r->delivery == IOGUARD_DELIVERY_NOT_REPORTED) {
        f->has_stale_target = true;
        f->stale_target = r->stale_target;
        f->current_access = g_strdup(ioguard_access_name(r->current_perm));
        if (r->now_mapped) {
            f->has_current_target = true;
            f->current_target = r->current_target;
        }
    }
    return f;
}

static IoguardFaultsInfo *ioguard_faults_of(IoguardIommuState *s, bool reset)
{
    IoguardFaultsInfo *info = g_new0(IoguardFaultsInfo, 1);
    IoguardFaultInfoList **tail = &info->faults;
    g_autofree IoguardFaultRecord *records =
        g_new(IoguardFaultRecord, MAX(s->fault_records, 1));
    size_t n = ioguard_iommu_get_fault_records(s->engine, records,
                                               s->fault_records,
                                               &info->overwritten);

    if (reset) {
        ioguard_iommu_clear_fault_records(s->engine);
    }
    info->qom_path = object_get_canonical_path(OBJECT(s));
    info->capacity = s->fault_records;
    info->verifier = s->verifier;
    for (size_t i = 0; i < n && i < s->fault_records; i++) {
        QAPI_LIST_APPEND(tail, ioguard_fault_info(s, &records[i]));
    }
    return info;
}

IoguardFaultsInfoList *qmp_query_ioguard_faults(bool has_reset, bool reset,
                                                Error **errp)
{
    IoguardFaultsInfoList *list = NULL, **tail = &list;
    g_autoptr(GSList) iommus = ioguard_iommus();

    for (GSList *l = iommus; l; l = l->next) {
        QAPI_LIST_APPEND(tail, ioguard_faults_of(l->data, has_reset && reset));
    }
    return list;
}

/* ---- query-ioguard-mappings ---- */

#define IOGUARD_MAPPINGS_DEFAULT 1024
#define IOGUARD_MAPPINGS_MAX 65536
/* Bounds the work of one query whatever the guest's tables look like. */
#define IOGUARD_MAPPINGS_MAX_TABLES 16384
/* A PCIe PASID has 20 bits (this IOMMU's tables take 16: PASmax 15). */
#define IOGUARD_PASID_MAX 0xfffff

static const char *const ioguard_dma_names[] = {
    [IOGUARD_DMA_UNTRANSLATED] = "untranslated",
    [IOGUARD_DMA_PASSTHROUGH] = "passthrough",
    [IOGUARD_DMA_TRANSLATED] = "translated",
    [IOGUARD_DMA_BLOCKED] = "blocked",
    [IOGUARD_DMA_GUEST_TRANSLATED] = "guest-translated",
};

static void ioguard_add_range(const IoguardMapping *m, void *opaque)
{
    IoguardMappingRangeList ***tail = opaque;
    IoguardMappingRange *r = g_new0(IoguardMappingRange, 1);

    r->iova = m->iova;
    r->last = m->last;
    r->target = m->target;
    r->read = m->perm & IOGUARD_PERM_READ;
    r->write = m->perm & IOGUARD_PERM_WRITE;
    QAPI_LIST_APPEND(*tail, r);
}

IoguardMappingsInfo *qmp_query_ioguard_mappings(const char *requester,
                                                bool has_start, uint64_t start,
                                                bool has_max_ranges,
                                                uint64_t max_ranges,
                                                bool has_pasid, uint32_t pasid,
                                                bool has_privileged,
                                                bool privileged,
                                                Error **errp)
{
    IoguardIommuState *s = ioguard_the_iommu(errp);
    IoguardMappingsInfo *info;
    IoguardMappingRangeList **tail;
    IoguardMappingWalk walk;
    uint16_t devid;

    if (!s || !ioguard_parse_requester(s, requester, &devid, errp)) {
        return NULL;
    }
    if (!has_max_ranges) {
        max_ranges = IOGUARD_MAPPINGS_DEFAULT;
    }
    if (max_ranges < 1 || max_ranges > IOGUARD_MAPPINGS_MAX) {
        error_setg(errp, "max-ranges %" PRIu64 " is not between 1 and %d",
                   max_ranges, IOGUARD_MAPPINGS_MAX);
        return NULL;
    }
    if (has_pasid && pasid > IOGUARD_PASID_MAX) {
        error_setg(errp, "pasid %" PRIu32 " is not a PASID (20 bits, at "
                   "most %d)", pasid, IOGUARD_PASID_MAX);
        return NULL;
    }
    if (has_privileged && privileged && !has_pasid) {
        error_setg(errp, "privileged needs a pasid: requests without a "
                   "PASID are user requests");
        return NULL;
    }
    info = g_new0(IoguardMappingsInfo, 1);
    tail = &info->ranges;
    ioguard_iommu_walk_mappings(s->engine, devid, has_pasid ? (int32_t)pasid
                                                            : -1,
                                has_privileged && privileged,
                                has_start ? start : 0,
                                max_ranges, IOGUARD_MAPPINGS_MAX_TABLES,
                                ioguard_add_range, &tail, &walk);
    info->requester = ioguard_requester_name(devid);
    info->qom_path = ioguard_requester_qom_path(s, devid);
    info->dma = g_strdup(ioguard_dma_names[walk.dma]);
    info->truncated = walk.truncated;
    if (walk.truncated) {
        info->has_next_iova = true;
        info->next_iova = walk.next_iova;
    }
    info->tables_read = walk.tables_read;
    info->malformed = walk.malformed;
    return info;
}

/* ---- query-ioguard-device ---- */

static void ioguard_add_irte(const IoguardIrte *e, void *opaque)
{
    IoguardIrteInfoList ***tail = opaque;
    IoguardIrteInfo *i = g_new0(IoguardIrteInfo, 1);

    i->index = e->index;
    i->remap_enabled = e->remap_enabled;
    i->suppress_fault = e->suppress_fault;
    i->guest_mode = e->guest_mode;
    i->destination_mode = g_strdup(e->dest_logical ? "logical" : "physical");
    i->delivery_mode = e->int_type;
    i->destination = e->destination;
    i->vector = e->vector;
    QAPI_LIST_APPEND(*tail, i);
}

/* query-ioguard-device lists this many of a GCR3 table's PASIDs. */
#define IOGUARD_QMP_PASIDS_MAX 64

static void ioguard_add_pasid(const IoguardPasidEntry *e, void *opaque)
{
    IoguardPasidInfoList ***tail = opaque;
    IoguardPasidInfo *p = g_new0(IoguardPasidInfo, 1);

    p->pasid = e->pasid;
    p->cr3 = e->cr3;
    p->reserved = e->reserved;
    QAPI_LIST_APPEND(*tail, p);
}

static IoguardGuestTablesInfo *ioguard_guest_tables(IoguardIommuState *s,
                                                    uint16_t devid,
                                                    const IoguardDeviceInfo *d)
{
    IoguardGuestTablesInfo *g = g_new0(IoguardGuestTablesInfo, 1);
    IoguardPasidInfoList **tail = &g->pasids;

    g->guest_io_valid = d->guest_io_valid;
    g->ppr = d->ppr;
    g->gcr3_table = d->gcr3_table_root;
    g->gcr3_levels = d->gcr3_levels;
    g->paging_levels = d->guest_paging_levels;
    g->has_pasids = ioguard_iommu_for_each_pasid(s->engine, devid,
                                                 IOGUARD_QMP_PASIDS_MAX,
                                                 ioguard_add_pasid, &tail);
    return g;
}

IoguardRequesterInfo *qmp_query_ioguard_device(const char *requester,
                                               Error **errp)
{
    static const char *const intctl[] = { "abort", "pass", "remap",
                                          "reserved" };
    IoguardIommuState *s = ioguard_the_iommu(errp);
    IoguardRequesterInfo *info;
    IoguardDeviceInfo d;
    IoguardIrteInfoList **irte_tail;
    uint16_t devid;

    if (!s || !ioguard_parse_requester(s, requester, &devid, errp)) {
        return NULL;
    }
    ioguard_iommu_read_device(s->engine, devid, &d);
    info = g_new0(IoguardRequesterInfo, 1);
    info->requester = ioguard_requester_name(devid);
    info->qom_path = ioguard_requester_qom_path(s, devid);
    info->iommu_enabled = d.iommu_enabled;
    if (!d.beyond_table) {
        info->has_dte_address = true;
        info->dte_address = d.dte_address;
    }
    if (d.readable) {
        info->has_dte = true;
        for (int i = 3; i >= 0; i--) {
            QAPI_LIST_PREPEND(info->dte, d.raw[i]);
        }
    }
    info->cached_copy_stale = d.cached_copy_stale;
    info->dma = g_strdup(ioguard_dma_names[d.dma]);
    info->illegal = d.illegal;
    info->valid = d.valid;
    info->translation_valid = d.translation_valid;
    info->mode = d.mode;
    info->page_table_root = d.page_table_root;
    info->domain = d.domain_id;
    info->read = d.read_allowed;
    info->write = d.write_allowed;
    info->interrupt_valid = d.interrupt_valid;
    info->interrupt_table_root = d.interrupt_table_root;
    info->interrupt_table_entries = d.interrupt_table_entries;
    info->interrupt_control = g_strdup(intctl[d.interrupt_control & 3]);
    if (d.lint1_pass) {
        QAPI_LIST_PREPEND(info->passed, g_strdup("lint1"));
    }
    if (d.lint0_pass) {
        QAPI_LIST_PREPEND(info->passed, g_strdup("lint0"));
    }
    if (d.nmi_pass) {
        QAPI_LIST_PREPEND(info->passed, g_strdup("nmi"));
    }
    if (d.extint_pass) {
        QAPI_LIST_PREPEND(info->passed, g_strdup("extint"));
    }
    if (d.init_pass) {
        QAPI_LIST_PREPEND(info->passed, g_strdup("init"));
    }
    info->irte_format = g_strdup(d.ga_enabled ? "128-bit" : "32-bit");
    irte_tail = &info->irtes;
    info->interrupt_table_readable =
        ioguard_iommu_for_each_irte(s->engine, devid, ioguard_add_irte,
                                    &irte_tail);
    if (d.readable && d.guest_valid) {
        info->guest = ioguard_guest_tables(s, devid, &d);
    }
    return info;
}

/* ---- HMP ---- */

static void hmp_print_counts(Monitor *mon, const char *indent,
                             const char *what, IoguardCountList *counts)
{
    for (; counts; counts = counts->next) {
        monitor_printf(mon, "%s%s %-28s %" PRIu64 "\n", indent, what,
                       counts->value->name, counts->value->count);
    }
}

static void hmp_print_prefetch(Monitor *mon, const char *indent,
                               const IoguardPrefetchInfo *p)
{
    if (p->issued) {
        monitor_printf(mon, "%sprefetched %" PRIu64 " in %" PRIu64
                       " walks reading %" PRIu64 " entries: used %" PRIu64
                       ", evicted unused %" PRIu64 ", invalidated unused %"
                       PRIu64 "\n", indent, p->issued, p->walks,
                       p->walk_levels, p->used, p->evicted_unused,
                       p->invalidated_unused);
    }
}

static void hmp_info_ioguard_stats(Monitor *mon, const QDict *qdict)
{
    g_autoptr(IoguardStatsInfoList) list =
        qmp_query_ioguard_stats(true, qdict_get_try_bool(qdict, "reset",
                                                         false), NULL);

    if (!list) {
        monitor_printf(mon, "no ioguard-iommu in this machine\n");
    }
    for (IoguardStatsInfoList *l = list; l; l = l->next) {
        IoguardStatsInfo *i = l->value;

        monitor_printf(mon, "%s%s\n", i->qom_path,
                       i->statistics ? "" : " (statistics=off)");
        monitor_printf(mon, "  translations %" PRIu64 " (IOTLB hits %" PRIu64
                       ", misses %" PRIu64 "), page walks %" PRIu64
                       " reading %" PRIu64 " entries, passthrough %" PRIu64
                       ", faults %" PRIu64 "\n", i->translations,
                       i->iotlb_hits, i->iotlb_misses, i->page_walks,
                       i->page_walk_levels, i->passthrough, i->faults);
        monitor_printf(mon, "  interrupts remapped %" PRIu64 ", blocked %"
                       PRIu64 "; events logged %" PRIu64 ", dropped %"
                       PRIu64 "; invalidations %" PRIu64 "\n",
                       i->interrupts_remapped, i->interrupts_blocked,
                       i->events_logged, i->events_dropped,
                       i->invalidations);
        hmp_print_prefetch(mon, "  ", i->prefetch);
        hmp_print_counts(mon, "  ", "event  ", i->events);
        hmp_print_counts(mon, "  ", "command", i->commands);
        for (IoguardRequesterStatsInfoList *r = i->requesters; r;
             r = r->next) {
            IoguardRequesterStatsInfo *q = r->value;

            monitor_printf(mon, "  %s %s\n", q->requester,
                           q->qom_path ? q->qom_path : "(no PCI device)");
            monitor_printf(mon, "    translations %" PRIu64 " (IOTLB hits %"
                           PRIu64 ", misses %" PRIu64 "), page walks %"
                           PRIu64 " reading %" PRIu64 " entries, passthrough %"
                           PRIu64 ", faults %" PRIu64 "\n", q->translations,
                           q->iotlb_hits, q->iotlb_misses, q->page_walks,
                           q->page_walk_levels, q->passthrough, q->faults);
            monitor_printf(mon, "    interrupts remapped %" PRIu64
                           ", blocked %" PRIu64 "\n", q->interrupts_remapped,
                           q->interrupts_blocked);
            hmp_print_prefetch(mon, "    ", q->prefetch);
            if (q->model) {
                monitor_printf(mon, "    modelled DMA time: %" PRIu64
                               " reads (%" PRIu64 " pipelined) %" PRIu64
                               " ns, %" PRIu64 " writes %" PRIu64 " ns\n",
                               q->model->reads, q->model->pipelined_reads,
                               q->model->read_ns, q->model->writes,
                               q->model->write_ns);
            }
            hmp_print_counts(mon, "    ", "event", q->events);
        }
    }
}

static void hmp_info_ioguard_faults(Monitor *mon, const QDict *qdict)
{
    g_autoptr(IoguardFaultsInfoList) list =
        qmp_query_ioguard_faults(true, qdict_get_try_bool(qdict, "reset",
                                                          false), NULL);

    if (!list) {
        monitor_printf(mon, "no ioguard-iommu in this machine\n");
    }
    for (IoguardFaultsInfoList *l = list; l; l = l->next) {
        IoguardFaultsInfo *i = l->value;

        monitor_printf(mon, "%s: %s%" PRIu64 " older records overwritten "
                       "(keeps %" PRIu32 "), verifier %s\n", i->qom_path,
                       i->faults ? "" : "no faults; ", i->overwritten,
                       i->capacity, i->verifier ? "on" : "off");
        for (IoguardFaultInfoList *f = i->faults; f; f = f->next) {
            IoguardFaultInfo *r = f->value;

            monitor_printf(mon, "  #%" PRIu64 " %.6fs %s %s%s %s", r->seq,
                           r->time_ns / 1e9, r->reason,
                           r->requester ? r->requester : "-",
                           r->interrupt ? " interrupt" : "", r->access);
            if (r->has_iova) {
                monitor_printf(mon, " iova 0x%" PRIx64, r->iova);
            } else {
                monitor_printf(mon, " at 0x%" PRIx64, r->address);
            }
            if (r->has_domain) {
                monitor_printf(mon, " domain %u", r->domain);
            }
            if (r->has_pasid) {
                monitor_printf(mon, " pasid %u", r->pasid);
            }
            if (r->has_stale_target) {
                monitor_printf(mon, " went to 0x%" PRIx64, r->stale_target);
                if (r->has_current_target) {
                    monitor_printf(mon, ", now 0x%" PRIx64 " %s",
                                   r->current_target, r->current_access);
                } else {
                    monitor_printf(mon, ", unmapped now");
                }
            }
            monitor_printf(mon, " [%s%s%s]%s%s\n", r->event ? r->event : "",
                           r->event ? ": " : "", r->delivery,
                           r->qom_path ? " " : "",
                           r->qom_path ? r->qom_path : "");
        }
    }
}

static void hmp_info_ioguard_mappings(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;
    const char *requester = qdict_get_str(qdict, "requester");
    bool has_start = qdict_haskey(qdict, "start");
    g_autoptr(IoguardMappingsInfo) info =
        qmp_query_ioguard_mappings(requester, has_start,
                                   has_start ? qdict_get_int(qdict, "start")
                                             : 0,
                                   false, 0, false, 0, false, false, &err);
    unsigned ranges = 0;

    if (hmp_handle_error(mon, err)) {
        return;
    }
    for (IoguardMappingRangeList *l = info->ranges; l; l = l->next) {
        ranges++;
    }
    monitor_printf(mon, "%s %s: DMA %s, %u ranges from %" PRIu64 " page "
                   "tables, %" PRIu64 " malformed entries\n",
                   info->requester, info->qom_path ? info->qom_path : "",
                   info->dma, ranges, info->tables_read, info->malformed);
    for (IoguardMappingRangeList *l = info->ranges; l; l = l->next) {
        IoguardMappingRange *r = l->value;

        monitor_printf(mon, "  0x%016" PRIx64 "-0x%016" PRIx64 " -> 0x%"
                       PRIx64 " %c%c\n", r->iova, r->last, r->target,
                       r->read ? 'r' : '-', r->write ? 'w' : '-');
    }
    if (info->truncated) {
        monitor_printf(mon, "  ... more from 0x%" PRIx64 "\n",
                       info->next_iova);
    }
}

static void hmp_info_ioguard_device(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;
    g_autoptr(IoguardRequesterInfo) i =
        qmp_query_ioguard_device(qdict_get_str(qdict, "requester"), &err);

    if (hmp_handle_error(mon, err)) {
        return;
    }
    monitor_printf(mon, "%s %s: IOMMU %s, DMA %s\n", i->requester,
                   i->qom_path ? i->qom_path : "", i->iommu_enabled ? "on" :
                   "off", i->dma);
    if (!i->has_dte_address) {
        monitor_printf(mon, "  beyond the device table\n");
        return;
    }
    monitor_printf(mon, "  DTE at 0x%" PRIx64 ":", i->dte_address);
    if (!i->has_dte) {
        monitor_printf(mon, " not in RAM\n");
        return;
    }
    for (uint64List *w = i->dte; w; w = w->next) {
        monitor_printf(mon, " %016" PRIx64, w->value);
    }
    monitor_printf(mon, "%s%s\n", i->illegal ? " (illegal)" : "",
                   i->cached_copy_stale ? " (IOMMU's cached copy is stale)"
                                        : "");
    monitor_printf(mon, "  V=%d TV=%d mode %u root 0x%" PRIx64 " domain %u "
                   "IR=%d IW=%d\n", i->valid, i->translation_valid, i->mode,
                   i->page_table_root, i->domain, i->read, i->write);
    if (i->guest) {
        IoguardGuestTablesInfo *g = i->guest;

        monitor_printf(mon, "  GV=1 GIoV=%d PPR=%d GCR3 table 0x%" PRIx64
                       " (GLX %u), %u-level v2 tables\n", g->guest_io_valid,
                       g->ppr, g->gcr3_table, g->gcr3_levels,
                       g->paging_levels);
        for (IoguardPasidInfoList *l = g->pasids; l; l = l->next) {
            monitor_printf(mon, "  PASID %" PRIu32 ": CR3 0x%" PRIx64 "%s\n",
                           l->value->pasid, l->value->cr3,
                           l->value->reserved ? " (reserved bits)" : "");
        }
    }
    monitor_printf(mon, "  IV=%d table 0x%" PRIx64 " (%" PRIu32 " %s entries"
                   "%s) IntCtl %s", i->interrupt_valid,
                   i->interrupt_table_root, i->interrupt_table_entries,
                   i->irte_format, i->interrupt_table_readable ? "" :
                   ", not in RAM", i->interrupt_control);
    for (strList *p = i->passed; p; p = p->next) {
        monitor_printf(mon, " %s-pass", p->value);
    }
    monitor_printf(mon, "\n");
    for (IoguardIrteInfoList *l = i->irtes; l; l = l->next) {
        IoguardIrteInfo *e = l->value;

        monitor_printf(mon, "  IRTE %u: %s vector 0x%02x -> APIC %" PRIu32
                       " (%s), type %u%s%s\n", e->index,
                       e->remap_enabled ? "remap" : "off", e->vector,
                       e->destination, e->destination_mode, e->delivery_mode,
                       e->suppress_fault ? ", SupIOPF" : "",
                       e->guest_mode ? ", guest mode" : "");
    }
}

static void ioguard_qmp_register(void)
{
    monitor_register_hmp("ioguard-stats", true, hmp_info_ioguard_stats);
    monitor_register_hmp("ioguard-faults", true, hmp_info_ioguard_faults);
    monitor_register_hmp("ioguard-mappings", true, hmp_info_ioguard_mappings);
    monitor_register_hmp("ioguard-device", true, hmp_info_ioguard_device);
}

type_init(ioguard_qmp_register);
