/*
 * ioguard-iommu's IOMMU notifiers: what QEMU's notifier users (vhost's
 * and vhost-user's device IOTLB) are told of the guest's invalidations.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "exec/address-spaces.h"
#include "system/dma.h"
#include "hw/pci/pci_bus.h"
#include "qapi/error.h"
#include "qemu/log.h"
#include "qemu/rcu.h"
#include "hw/ioguard/iommu-engine.h"
#include "iommu-internal.h"
#include "trace.h"

/* A translation handed out to a requester with notifier users. */
typedef struct IoguardRecord {
    uint64_t iova;
    uint64_t mask;
    uint64_t target;
    unsigned perm;
} IoguardRecord;

/* Beyond this, a requester's records are dropped with one full UNMAP. */
#define IOGUARD_RECORDS_MAX 65536

/* With records_lock held. */
static void ioguard_keep_record(IoguardDeviceSpace *ds, IoguardRecord *r)
{
    g_hash_table_replace(ds->records, &r->iova, r);
    ds->record_shifts |= 1ULL << MIN(ctz64(r->mask + 1), 63);
}

/* What users held is gone already, or they are told otherwise. */
static void ioguard_drop_records(IoguardDeviceSpace *ds)
{
    qemu_mutex_lock(&ds->records_lock);
    g_hash_table_remove_all(ds->records);
    ds->record_shifts = 0;
    ds->recheck = false;
    qemu_mutex_unlock(&ds->records_lock);
}

/*
 * IOMMU notifiers: users that keep translations of a requester's DMA
 * outside QEMU's memory core (vhost's and vhost-user's device IOTLB) must
 * drop what the guest invalidated before its invalidation completes.
 *
 * Telling them of every invalidated range is correct but useless: Linux in
 * lazy mode flushes whole domains, and a vhost-user back-end (DPDK) then
 * drops its virtqueues' rings and stops the queue that only its own traffic
 * would have re-translated. So we keep what each such requester was handed
 * (every translation of its region) and, after an invalidation, walk the
 * tables again for those records only: a record whose mapping changed or
 * went is unmapped, one that still holds is kept, as a cache would be.
 */
static bool ioguard_record_overlaps(const IoguardRecord *r, uint64_t first,
                                    uint64_t last)
{
    return r->iova <= last && r->iova + r->mask >= first;
}

/* The records of ds that overlap first..last, taken out of the table. */
static GPtrArray *ioguard_take_records(IoguardDeviceSpace *ds,
                                       uint64_t first, uint64_t last)
{
    GPtrArray *taken = g_ptr_array_new();
    uint64_t pages = (last - first) >> 12;

    if (pages < g_hash_table_size(ds->records)) {
        /* A few pages: look up each size's aligned bases. */
        for (uint64_t shifts = ds->record_shifts; shifts;
             shifts &= shifts - 1) {
            unsigned shift = ctz64(shifts);
            uint64_t size = 1ULL << shift;

            for (uint64_t base = first & ~(size - 1); base <= last;
                 base += size) {
                IoguardRecord *r = g_hash_table_lookup(ds->records, &base);

                if (r) {
                    g_hash_table_steal(ds->records, &base);
                    g_ptr_array_add(taken, r);
                }
                if (base + size - 1 >= last) {
                    break;
                }
            }
        }
    } else {
        GHashTableIter iter;
        IoguardRecord *r;

        g_hash_table_iter_init(&iter, ds->records);
        while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&r)) {
            if (ioguard_record_overlaps(r, first, last)) {
                g_hash_table_iter_steal(&iter);
                g_ptr_array_add(taken, r);
            }
        }
    }
    return taken;
}

static void ioguard_notify_one(IoguardDeviceSpace *ds, IOMMUNotifier *n,
                               IOMMUNotifierFlag type, uint64_t first,
                               uint64_t last, uint64_t target, unsigned perm)
{
    uint64_t start = MAX(first, n->start), end = MIN(last, n->end);
    IOMMUTLBEvent event = {
        .type = type,
        .entry.target_as = &address_space_memory,
        .entry.perm = perm,
    };

    /*
     * Cut to the user's range, in aligned powers of two: QEMU asserts that
     * an event lies within the range of each user it concerns, and a guest's
     * large page may straddle the MSI window between vfio's two sections.
     */
    while (start <= end) {
        /* 63 bits at most, so that addr_mask + 1 is a size. */
        uint64_t mask = dma_aligned_pow2_mask(start, end, 63);

        event.entry.iova = start;
        event.entry.addr_mask = mask;
        event.entry.translated_addr = target + (start - first);
        if (type == IOMMU_NOTIFIER_MAP) {
            trace_ioguard_notify_map(ioguard_space_devid(ds), start, mask,
                                     event.entry.translated_addr, perm);
        } else {
            trace_ioguard_notify_unmap(ioguard_space_devid(ds), start, mask);
        }
        memory_region_notify_iommu_one(n, &event);
        if (start + mask == end) {
            break;
        }
        start += mask + 1;
    }
}

static void ioguard_notify_unmap(IoguardDeviceSpace *ds, uint64_t first,
                                 uint64_t last)
{
    IOMMUNotifier *n;

    IOMMU_NOTIFIER_FOREACH(n, &ds->translated) {
        /* A DEVIOTLB_UNMAP user is the device's own (ATS) cache. */
        ioguard_notify_one(ds, n, n->notifier_flags & IOMMU_NOTIFIER_UNMAP ?
                           IOMMU_NOTIFIER_UNMAP :
                           IOMMU_NOTIFIER_DEVIOTLB_UNMAP,
                           first, last, 0, IOMMU_NONE);
    }
}

static void ioguard_notify_map(IoguardDeviceSpace *ds, IOMMUNotifier *only,
                               const IoguardRecord *r)
{
    IOMMUNotifier *n;

    IOMMU_NOTIFIER_FOREACH(n, &ds->translated) {
        if ((n->notifier_flags & IOMMU_NOTIFIER_MAP) && (!only || n == only)) {
            ioguard_notify_one(ds, n, IOMMU_NOTIFIER_MAP, r->iova,
                               r->iova + r->mask, r->target, r->perm);
        }
    }
}

/* Everything a notifier user may hold goes (a new DTE, identity). */
void ioguard_notify_unmap_all(IoguardDeviceSpace *ds)
{
    g_autoptr(GPtrArray) taken = NULL;

    if (!ds->notifier_flags) {
        return;
    }
    if (!(ds->notifier_flags & IOMMU_NOTIFIER_MAP)) {
        ioguard_drop_records(ds);
        ioguard_notify_unmap(ds, 0, UINT64_MAX);
        return;
    }
    /* MAP users hold exactly the records: each is unmapped. */
    qemu_mutex_lock(&ds->records_lock);
    taken = ioguard_take_records(ds, 0, UINT64_MAX);
    ds->record_shifts = 0;
    ds->recheck = false;
    qemu_mutex_unlock(&ds->records_lock);
    g_ptr_array_set_free_func(taken, g_free);
    for (guint i = 0; i < taken->len; i++) {
        IoguardRecord *r = g_ptr_array_index(taken, i);

        ioguard_notify_unmap(ds, r->iova, r->iova + r->mask);
    }
}

/* On the DMA path of a requester with (UNMAP-only) notifier users. */
void ioguard_record(IoguardDeviceSpace *ds, const IOMMUTLBEntry *e)
{
    IoguardRecord *r = g_new(IoguardRecord, 1);
    bool overflow;

    *r = (IoguardRecord) { e->iova, e->addr_mask, e->translated_addr,
                           e->perm };
    qemu_mutex_lock(&ds->records_lock);
    ioguard_keep_record(ds, r);
    overflow = g_hash_table_size(ds->records) > IOGUARD_RECORDS_MAX;
    qemu_mutex_unlock(&ds->records_lock);
    if (overflow) {
        ioguard_notify_unmap_all(ds);
    }
}

/* Called with the engine's lock held: only marks what to check. */
void ioguard_mark_recheck(IoguardDeviceSpace *ds, uint64_t first,
                          uint64_t last)
{
    qemu_mutex_lock(&ds->records_lock);
    if (ds->recheck) {
        first = MIN(first, ds->recheck_first);
        last = MAX(last, ds->recheck_last);
    }
    ds->recheck = true;
    ds->recheck_first = first;
    ds->recheck_last = last;
    qemu_mutex_unlock(&ds->records_lock);
}

/* What an invalidation concerns: which spaces, and the range. */
typedef struct Invalidation {
    IoguardIommuState *s;
    int domain;                 /* IOMMU pages: the domain (-1: all) */
    int devid;                  /* device IOTLB: the requester */
    uint64_t first, last;
} Invalidation;

static void ioguard_mark_pages(IoguardDeviceSpace *ds, void *opaque)
{
    const Invalidation *inv = opaque;
    uint16_t of;

    /* Device-IOTLB users hear INVALIDATE_IOTLB_PAGES instead. */
    if (!(ds->notifier_flags & IOMMU_NOTIFIER_UNMAP)) {
        return;
    }
    if (inv->domain < 0 ||
        (ioguard_iommu_translating_domain(inv->s->engine,
                                          ioguard_space_devid(ds), &of) &&
         of == inv->domain)) {
        ioguard_mark_recheck(ds, inv->first, inv->last);
    }
}

void ioguard_iommu_pages_invalidated(void *opaque, int domain,
                                     uint64_t first, uint64_t last)
{
    Invalidation inv = { opaque, domain, -1, first, last };

    ioguard_for_each_space(opaque, ioguard_mark_pages, &inv);
}

static void ioguard_mark_device_iotlb(IoguardDeviceSpace *ds, void *opaque)
{
    const Invalidation *inv = opaque;

    /* A device's own cache (ioguard-nic's PASID entries): told at once. */
    if (ds->device_iotlb && ioguard_space_devid(ds) == inv->devid) {
        ds->device_iotlb(ds->device_iotlb_opaque, inv->first, inv->last);
    }
    if ((ds->notifier_flags & IOMMU_NOTIFIER_DEVIOTLB_UNMAP) &&
        ioguard_space_devid(ds) == inv->devid) {
        ioguard_mark_recheck(ds, inv->first, inv->last);
    }
}

/*
 * With ATS (device-iotlb=on), an endpoint's translation cache is dropped
 * by INVALIDATE_IOTLB_PAGES, which Linux sends after its own IOTLB's
 * invalidation; QEMU's device-IOTLB notifier users (vhost of a virtio
 * device with ats=on and ATS enabled by the guest) are that cache.
 */
void ioguard_device_iotlb_invalidated(void *opaque, uint16_t devid,
                                      uint64_t first, uint64_t last)
{
    Invalidation inv = { opaque, -1, devid, first, last };

    ioguard_for_each_space(opaque, ioguard_mark_device_iotlb, &inv);
}

/*
 * Whether the tables still map r as it was handed out: one entry per
 * level for its first page, whatever the guest put around it (a walk of
 * the range from there would scan on through what is not mapped, and a
 * sync checks up to 65,536 records).
 */
static bool ioguard_record_holds(IoguardDeviceSpace *ds,
                                 const IoguardRecord *r)
{
    IoguardMapping m;

    return ioguard_iommu_lookup_page(ds->iommu->engine,
                                     ioguard_space_devid(ds), r->iova, &m) &&
           m.iova <= r->iova && m.last >= r->iova + r->mask &&
           m.target + (r->iova - m.iova) == r->target && m.perm == r->perm;
}

/*
 * MAP users (vfio-pci) mirror the tables into the host's IOMMU: their
 * records are the page-table entries they were told of, at most this many
 * (beyond, a warning, and the rest stays unmapped in the host).
 */
#define IOGUARD_MAPPED_MAX (1 << 18)
#define IOGUARD_MAPPED_TABLES_MAX (1 << 16)

static void ioguard_collect_entry(const IoguardMapping *m, void *opaque)
{
    g_array_append_val((GArray *)opaque, *m);
}

/*
 * VFIO can only map guest RAM, and reports anything else as an error of
 * its own: an entry that points elsewhere (MMIO, nothing, the end of a
 * RAM block) is the guest's doing, and is not mapped.
 */
static bool ioguard_reaches_ram(IoguardDeviceSpace *ds, const IoguardRecord *r)
{
    hwaddr xlat, len = r->mask + 1;
    MemoryRegion *mr;
    bool ram;

    RCU_READ_LOCK_GUARD();
    mr = address_space_translate(&address_space_memory, r->target, &xlat,
                                 &len, r->perm & IOMMU_WO,
                                 MEMTXATTRS_UNSPECIFIED);
    ram = memory_region_is_ram(mr) && len == r->mask + 1;
    if (!ram) {
        qemu_log_mask(LOG_GUEST_ERROR, "ioguard-iommu: requester "
                      "%02x:%02x.%x maps IOVA 0x%" PRIx64 "..0x%" PRIx64
                      " to 0x%" PRIx64 ", which is not all RAM: not mapped "
                      "for vfio\n", pci_bus_num(ds->bus), PCI_SLOT(ds->devfn),
                      PCI_FUNC(ds->devfn), r->iova, r->iova + r->mask,
                      r->target);
    }
    return ram;
}

static bool ioguard_entry_is(const IoguardMapping *e, const IoguardRecord *r)
{
    return r->iova == e->iova && r->mask == e->last - e->iova &&
           r->target == e->target && r->perm == e->perm;
}

/*
 * Reads the page-table entries of first..last again and makes MAP users
 * hold exactly them: a record that changed or went is unmapped (first:
 * vfio refuses a map over a mapping), a new entry mapped, an unchanged
 * one left alone. The range first grows to the whole of every entry and
 * record it touches, so that a large page replaced by small ones (or the
 * other way round) is unmapped and mapped whole.
 */
static void ioguard_sync_mapped(IoguardDeviceSpace *ds, uint64_t first,
                                uint64_t last)
{
    g_autoptr(GArray) entries = g_array_new(FALSE, FALSE,
                                            sizeof(IoguardMapping));
    g_autoptr(GHashTable) held = g_hash_table_new_full(g_int64_hash,
                                                       g_int64_equal, NULL,
                                                       g_free);
    g_autoptr(GPtrArray) taken = NULL;
    IoguardMappingWalk walk;
    GHashTableIter iter;
    IoguardRecord *r;

    for (;;) {
        uint64_t lo = first, hi = last;

        g_array_set_size(entries, 0);
        ioguard_iommu_walk_page_entries(ds->iommu->engine,
                                        ioguard_space_devid(ds), first, last,
                                        IOGUARD_MAPPED_MAX,
                                        IOGUARD_MAPPED_TABLES_MAX,
                                        ioguard_collect_entry, entries, &walk);
        if (walk.truncated && !ds->mapped_warned) {
            ds->mapped_warned = true;
            warn_report("ioguard-iommu: the tables of requester %02x:%02x.%x "
                        "go on beyond %d entries or %d tables; from IOVA "
                        "0x%" PRIx64 " its MAP notifier users (vfio) are not "
                        "told of them", pci_bus_num(ds->bus),
                        PCI_SLOT(ds->devfn), PCI_FUNC(ds->devfn),
                        IOGUARD_MAPPED_MAX, IOGUARD_MAPPED_TABLES_MAX,
                        walk.next_iova);
        }
        if (entries->len) {
            lo = MIN(lo, g_array_index(entries, IoguardMapping, 0).iova);
            hi = MAX(hi, g_array_index(entries, IoguardMapping,
                                       entries->len - 1).last);
        }
        qemu_mutex_lock(&ds->records_lock);
        taken = ioguard_take_records(ds, lo, hi);
        for (guint i = 0; i < taken->len; i++) {
            r = g_ptr_array_index(taken, i);
            lo = MIN(lo, r->iova);
            hi = MAX(hi, r->iova + r->mask);
        }
        if (lo == first && hi == last) {
            qemu_mutex_unlock(&ds->records_lock);
            break;
        }
        /* Grown: put them back and read the wider range. */
        for (guint i = 0; i < taken->len; i++) {
            ioguard_keep_record(ds, g_ptr_array_index(taken, i));
        }
        qemu_mutex_unlock(&ds->records_lock);
        g_clear_pointer(&taken, g_ptr_array_unref);
        first = lo;
        last = hi;
    }

    for (guint i = 0; i < taken->len; i++) {
        r = g_ptr_array_index(taken, i);
        g_hash_table_replace(held, &r->iova, r);
    }
    /* What still holds stays; entries[i].perm = NONE marks it done. */
    for (guint i = 0; i < entries->len; i++) {
        IoguardMapping *e = &g_array_index(entries, IoguardMapping, i);

        r = g_hash_table_lookup(held, &e->iova);
        if (r && ioguard_entry_is(e, r)) {
            g_hash_table_steal(held, &e->iova);
            qemu_mutex_lock(&ds->records_lock);
            ioguard_keep_record(ds, r);
            qemu_mutex_unlock(&ds->records_lock);
            e->perm = IOGUARD_PERM_NONE;
        }
    }
    g_hash_table_iter_init(&iter, held);
    while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&r)) {
        ioguard_notify_unmap(ds, r->iova, r->iova + r->mask);
    }
    for (guint i = 0; i < entries->len; i++) {
        IoguardMapping *e = &g_array_index(entries, IoguardMapping, i);
        bool full;

        if (e->perm == IOGUARD_PERM_NONE) {
            continue;
        }
        r = g_new(IoguardRecord, 1);
        *r = (IoguardRecord) { e->iova, e->last - e->iova, e->target,
                               e->perm };
        if (!ioguard_reaches_ram(ds, r)) {
            g_free(r);
            continue;
        }
        qemu_mutex_lock(&ds->records_lock);
        full = g_hash_table_size(ds->records) >= IOGUARD_MAPPED_MAX;
        if (!full) {
            ioguard_keep_record(ds, r);
        }
        qemu_mutex_unlock(&ds->records_lock);
        if (full) {
            g_free(r);
            if (!ds->mapped_warned) {
                ds->mapped_warned = true;
                warn_report("ioguard-iommu: requester %02x:%02x.%x maps more "
                            "than %d page-table entries; its MAP notifier "
                            "users (vfio) are not told of the rest",
                            pci_bus_num(ds->bus), PCI_SLOT(ds->devfn),
                            PCI_FUNC(ds->devfn), IOGUARD_MAPPED_MAX);
            }
            break;
        }
        ioguard_notify_map(ds, NULL, r);
    }
}

/*
 * After the engine has run (commands, timers, reset, a loaded snapshot),
 * without its lock: unmap, for notifier users, each record an invalidation
 * made stale. The vCPU that wrote the command buffer's tail is still in
 * that write, so the guest sees its COMPLETION_WAIT after this.
 */
static void ioguard_sync_space(IoguardDeviceSpace *ds, void *opaque)
{
    g_autoptr(GPtrArray) taken = NULL;
    uint64_t first, last;

    if (!ds->notifier_flags || !ds->recheck) {
        return;
    }
    qemu_mutex_lock(&ds->records_lock);
    ds->recheck = false;
    first = ds->recheck_first;
    last = ds->recheck_last;
    if (!(ds->notifier_flags & IOMMU_NOTIFIER_MAP)) {
        taken = ioguard_take_records(ds, first, last);
    }
    qemu_mutex_unlock(&ds->records_lock);
    if (!taken) {
        ioguard_sync_mapped(ds, first, last);
        return;
    }
    for (guint i = 0; i < taken->len; i++) {
        IoguardRecord *r = g_ptr_array_index(taken, i);

        if (ioguard_record_holds(ds, r)) {
            qemu_mutex_lock(&ds->records_lock);
            ioguard_keep_record(ds, r);
            qemu_mutex_unlock(&ds->records_lock);
        } else {
            ioguard_notify_unmap(ds, r->iova, r->iova + r->mask);
            g_free(r);
        }
    }
}

void ioguard_sync_notifiers(IoguardIommuState *s)
{
    ioguard_for_each_space(s, ioguard_sync_space, NULL);
}

/*
 * UNMAP notifiers (vhost, vhost-user) are told of each translation they
 * were handed that an invalidation made stale (ioguard_sync_notifiers).
 * MAP notifiers (vfio-pci, which mirrors the tables into the host's IOMMU)
 * are replayed the tables and then told of every change an invalidation
 * shows (ioguard_sync_mapped); they need dma-remap=on, which makes the
 * guest invalidate after it maps.
 */
int ioguard_notify_flag_changed(IOMMUMemoryRegion *iommu_mr,
                                IOMMUNotifierFlag old, IOMMUNotifierFlag new,
                                Error **errp)
{
    IoguardDeviceSpace *ds = container_of(iommu_mr, IoguardDeviceSpace,
                                          translated);

    if ((new & IOMMU_NOTIFIER_MAP) && !ds->iommu->dma_remap) {
        error_setg(errp, "ioguard-iommu: %s (requester %02x:%02x.%x) needs "
                   "MAP notifications, as vfio-pci does: add dma-remap=on to "
                   "-device ioguard-iommu",
                   memory_region_name(MEMORY_REGION(iommu_mr)),
                   pci_bus_num(ds->bus), PCI_SLOT(ds->devfn),
                   PCI_FUNC(ds->devfn));
        return -EINVAL;
    }
    if ((old ^ new) & IOMMU_NOTIFIER_MAP) {
        /*
         * The records change meaning (translations handed out, or entries
         * mapped). A MAP user arriving is replayed the tables; UNMAP users
         * there were drop what they held. One leaving has unmapped its
         * whole range itself.
         */
        if (old && !(old & IOMMU_NOTIFIER_MAP)) {
            ioguard_notify_unmap_all(ds);
        } else {
            ioguard_drop_records(ds);
        }
    }
    /*
     * Otherwise the records stay when the last user goes: vhost
     * re-registers at once when the guest turns ATS on or off, and still
     * holds what it was handed.
     */
    ds->notifier_flags = new;
    trace_ioguard_notifier_flags(ioguard_space_devid(ds), old, new);
    return 0;
}

/*
 * A MAP user registered (vfio, as the region appears): it is told of every
 * page-table entry. Other MAP users of the region (vfio's other section)
 * already hold the records; a first one makes them.
 */
void ioguard_replay(IOMMUMemoryRegion *iommu_mr, IOMMUNotifier *n)
{
    IoguardDeviceSpace *ds = container_of(iommu_mr, IoguardDeviceSpace,
                                          translated);
    g_autoptr(GPtrArray) records = g_ptr_array_new();
    GHashTableIter iter;
    IoguardRecord *r;

    if (!(n->notifier_flags & IOMMU_NOTIFIER_MAP)) {
        return;
    }
    qemu_mutex_lock(&ds->records_lock);
    g_hash_table_iter_init(&iter, ds->records);
    while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&r)) {
        g_ptr_array_add(records, r);
    }
    qemu_mutex_unlock(&ds->records_lock);
    if (!records->len) {
        ioguard_sync_mapped(ds, 0, UINT64_MAX);
        return;
    }
    for (guint i = 0; i < records->len; i++) {
        ioguard_notify_map(ds, n, g_ptr_array_index(records, i));
    }
}

void ioguard_notifiers_init(IoguardDeviceSpace *ds)
{
    qemu_mutex_init(&ds->records_lock);
    ds->records = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
                                        g_free);
}
