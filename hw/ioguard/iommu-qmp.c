/*
 * ioguard-iommu: what the IOMMU sees, for QMP (qapi/ioguard.json) and HMP.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-ioguard.h"
#include "qobject/qdict.h"
#include "monitor/monitor.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_bus.h"
#include "hw/ioguard/amd-vi-regs.h"
#include "hw/ioguard/iommu-engine.h"
#include "hw/ioguard/iommu.h"

/* Event types and command opcodes by their AMD-Vi codes, in QMP spelling. */
static const char *const ioguard_event_names[IOGUARD_EVENT_TYPES] = {
    [EVENT_TYPE_ILL_DEV] = "illegal-dev-table-entry",
    [EVENT_TYPE_IO_FAULT] = "io-page-fault",
    [EVENT_TYPE_DEV_TAB_ERR] = "dev-tab-hardware-error",
    [EVENT_TYPE_PAGE_TAB_ERR] = "page-tab-hardware-error",
    [EVENT_TYPE_ILL_CMD] = "illegal-command-error",
    [EVENT_TYPE_CMD_HARD_ERR] = "command-hardware-error",
};

static const char *const ioguard_command_names[IOGUARD_COMMAND_OPCODES] = {
    [CMD_COMPL_WAIT] = "completion-wait",
    [CMD_INV_DEV_ENTRY] = "invalidate-devtab-entry",
    [CMD_INV_IOMMU_PAGES] = "invalidate-iommu-pages",
    [CMD_INV_IOTLB_PAGES] = "invalidate-iotlb-pages",
    [CMD_INV_IRT] = "invalidate-interrupt-table",
    [CMD_PREFETCH_IOMMU_PAGES] = "prefetch-iommu-pages",
    [CMD_COMPLETE_PPR] = "complete-ppr-request",
    [CMD_INV_ALL] = "invalidate-iommu-all",
};

/* The nonzero counts, named; codes without a name keep their number. */
static IoguardCountList *ioguard_counts(const uint64_t *counts,
                                        const char *const *names, int n)
{
    IoguardCountList *list = NULL;

    for (int i = n - 1; i >= 0; i--) {
        if (counts[i]) {
            IoguardCount *c = g_new0(IoguardCount, 1);

            c->name = names[i] ? g_strdup(names[i])
                               : g_strdup_printf("code-%d", i);
            c->count = counts[i];
            QAPI_LIST_PREPEND(list, c);
        }
    }
    return list;
}

typedef struct {
    IoguardIommuState *iommu;
    IoguardRequesterStatsInfoList **tail;
} RequesterWalk;

static void ioguard_add_requester(const IoguardRequesterStats *st,
                                  void *opaque)
{
    RequesterWalk *w = opaque;
    IoguardRequesterStatsInfo *r = g_new0(IoguardRequesterStatsInfo, 1);
    PCIBus *root = pci_get_bus(PCI_DEVICE(&w->iommu->pci));
    PCIDevice *dev = pci_find_device(root, PCI_BUS_NUM(st->devid),
                                     st->devid & 0xff);

    r->requester = g_strdup_printf("%02x:%02x.%x", PCI_BUS_NUM(st->devid),
                                   PCI_SLOT(st->devid), PCI_FUNC(st->devid));
    if (dev) {
        r->qom_path = object_get_canonical_path(OBJECT(dev));
    }
    r->translations = st->translations;
    r->iotlb_hits = st->iotlb_hits;
    r->iotlb_misses = st->iotlb_misses;
    r->page_walks = st->page_walks;
    r->page_walk_levels = st->page_walk_levels;
    r->passthrough = st->passthrough;
    r->faults = st->faults;
    r->interrupts_remapped = st->interrupts_remapped;
    r->interrupts_blocked = st->interrupts_blocked;
    r->events = ioguard_counts(st->events_by_type, ioguard_event_names,
                               IOGUARD_EVENT_TYPES);
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
    info->translations = st.translations;
    info->iotlb_hits = st.iotlb_hits;
    info->iotlb_misses = st.iotlb_misses;
    info->page_walks = st.page_walks;
    info->page_walk_levels = st.page_walk_levels;
    info->passthrough = st.passthrough;
    info->faults = st.faults;
    info->interrupts_remapped = st.interrupts_remapped;
    info->interrupts_blocked = st.interrupts_blocked;
    info->events_logged = st.events_logged;
    info->events_dropped = st.events_dropped;
    info->events = ioguard_counts(st.events_by_type, ioguard_event_names,
                                  IOGUARD_EVENT_TYPES);
    info->commands = ioguard_counts(st.commands_by_opcode,
                                    ioguard_command_names,
                                    IOGUARD_COMMAND_OPCODES);
    info->invalidations = st.invalidations;
    return info;
}

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

static void hmp_print_counts(Monitor *mon, const char *indent,
                             const char *what, IoguardCountList *counts)
{
    for (; counts; counts = counts->next) {
        monitor_printf(mon, "%s%s %-28s %" PRIu64 "\n", indent, what,
                       counts->value->name, counts->value->count);
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
            hmp_print_counts(mon, "    ", "event", q->events);
        }
    }
}

static void ioguard_qmp_register(void)
{
    monitor_register_hmp("ioguard-stats", true, hmp_info_ioguard_stats);
}

type_init(ioguard_qmp_register);
