/*
 * ioguard-nic's ATS (ats=on): a PCIe endpoint with an ATS capability and a
 * small device IOTLB (the address translation cache, ATC).
 *
 * While the guest has ATS enabled, each DMA chunk looks its page up in the
 * ATC; on a miss the NIC asks the IOMMU for the translation (an ATS
 * translation request: address_space_get_iotlb_entry, which the IOMMU
 * answers from its tables, refusing and logging what they do not allow)
 * and keeps it. A hit goes straight to memory, as a translated request
 * does. With a PASID prefix (pri=on, nic-pri.c) the request goes to
 * ioguard-iommu's PASID translation, and the entry is the PASID's. The
 * IOMMU's device-IOTLB invalidations (INVALIDATE_IOTLB_PAGES,
 * delivered through QEMU's DEVIOTLB_UNMAP notifier, and for the PASIDs'
 * entries by ioguard-iommu directly) drop what they cover;
 * so does the guest turning ATS off, and a reset.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qapi/error.h"
#include "hw/pci/pcie.h"
#include "exec/address-spaces.h"
#include "hw/ioguard/iommu-ats.h"
#include "nic-internal.h"
#include "trace.h"

/* Where the ATS capability sits in extended configuration space. */
#define NIC_ATS_CAP_OFFSET 0x100

/* The IOMMU regions of the NIC's DMA address space, and our notifier on each. */
typedef struct NicAtcNotifier {
    IOMMUNotifier n;
    IoguardNicState *s;
    MemoryRegion *mr;
    QLIST_ENTRY(NicAtcNotifier) next;
} NicAtcNotifier;

bool nic_ats_enabled(IoguardNicState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    return pdev->exp.ats_cap &&
           (pci_get_word(pdev->config + pdev->exp.ats_cap + PCI_ATS_CTRL) &
            PCI_ATS_CTRL_ENABLE);
}

void nic_atc_flush(IoguardNicState *s)
{
    memset(s->atc, 0, sizeof(s->atc));
}

static NicAtcEntry *nic_atc_lookup(IoguardNicState *s, uint64_t addr,
                                   uint32_t pasid)
{
    for (int i = 0; i < NIC_ATC_ENTRIES; i++) {
        NicAtcEntry *e = &s->atc[i];

        if (e->valid && (addr & ~e->mask) == e->iova && e->pasid == pasid) {
            return e;
        }
    }
    return NULL;
}

/*
 * The verifier of the IOMMU that gave a translation for pasid, and its
 * region for our requester: for requests without a PASID, the IOMMU
 * region in our address space (none while the IOMMU passes them); with
 * one, ioguard-iommu's region whatever our DMA without a PASID does.
 */
static const IoguardIommuMemoryRegionClass *
nic_atc_verifier(IoguardNicState *s, uint32_t pasid, IOMMUMemoryRegion **mr)
{
    const IoguardIommuMemoryRegionClass *k;

    if (!(pasid & NIC_TE_PASID_VALID)) {
        *mr = s->atc_verified_mr;
        return s->atc_verifier;
    }
    *mr = nic_ioguard_region(s, &k);
    return *mr ? k : NULL;
}

/* The least recently used entry (or a free one) gets t. */
static NicAtcEntry *nic_atc_insert(IoguardNicState *s, const IOMMUTLBEntry *t,
                                   unsigned perm, uint32_t pasid)
{
    NicAtcEntry *victim = &s->atc[0];
    IOMMUMemoryRegion *mr;
    const IoguardIommuMemoryRegionClass *verifier =
        nic_atc_verifier(s, pasid, &mr);

    for (int i = 0; i < NIC_ATC_ENTRIES; i++) {
        NicAtcEntry *e = &s->atc[i];

        if (!e->valid) {
            victim = e;
            break;
        }
        if (e->last_use < victim->last_use) {
            victim = e;
        }
    }
    *victim = (NicAtcEntry) {
        .valid = true,
        .iova = t->iova,
        .mask = t->addr_mask,
        .target = t->translated_addr,
        .as = t->target_as,
        .perm = perm,
        .generation = verifier ? verifier->ats_generation(mr) : 0,
        .pasid = pasid,
    };
    return victim;
}

IOMMUMemoryRegion *nic_ioguard_region(IoguardNicState *s,
                                      const IoguardIommuMemoryRegionClass **k)
{
    AddressSpace *as = pci_device_iommu_address_space(PCI_DEVICE(s));
    MemoryRegion *sub;

    QTAILQ_FOREACH(sub, &as->root->subregions, subregions_link) {
        ObjectClass *oc = object_class_dynamic_cast(
            object_get_class(OBJECT(sub)), TYPE_IOGUARD_IOMMU_MEMORY_REGION);

        if (oc) {
            *k = (const IoguardIommuMemoryRegionClass *)oc;
            return IOMMU_MEMORY_REGION(sub);
        }
    }
    return NULL;
}

/*
 * INVALIDATE_IOTLB_PAGES: the range goes (from every PASID's entries, as
 * the invalidation's PASID is not said: at least what was asked goes).
 */
static void nic_atc_drop(IoguardNicState *s, uint64_t first, uint64_t last,
                         bool pasids_only)
{
    trace_ioguard_nic_ats_invalidate(first, last);
    s->atc_invalidations++;
    for (int i = 0; i < NIC_ATC_ENTRIES; i++) {
        NicAtcEntry *e = &s->atc[i];

        if (e->valid && e->iova <= last && e->iova + e->mask >= first &&
            (!pasids_only || (e->pasid & NIC_TE_PASID_VALID))) {
            e->valid = false;
        }
    }
}

/* As QEMU's device-IOTLB notifier delivers it. */
static void nic_atc_invalidate(IOMMUNotifier *n, IOMMUTLBEntry *iotlb)
{
    NicAtcNotifier *an = container_of(n, NicAtcNotifier, n);

    nic_atc_drop(an->s, iotlb->iova, iotlb->iova + iotlb->addr_mask, false);
}

/*
 * The same from ioguard-iommu directly, for the entries of requests with
 * a PASID: QEMU's notifier (above) is only there while our DMA without a
 * PASID is translated, and tells only of what it handed out without one.
 */
static void nic_atc_invalidate_pasids(void *opaque, uint64_t first,
                                      uint64_t last)
{
    nic_atc_drop(opaque, first, last, true);
}

/* An ATS translation request, with the PASID prefix if pasid has one. */
static IOMMUTLBEntry nic_ats_translate(IoguardNicState *s, uint64_t addr,
                                      bool write, uint32_t pasid)
{
    const IoguardIommuMemoryRegionClass *k;
    IOMMUMemoryRegion *mr;

    if (!(pasid & NIC_TE_PASID_VALID)) {
        return address_space_get_iotlb_entry(
            pci_get_address_space(PCI_DEVICE(s)), addr, write,
            MEMTXATTRS_UNSPECIFIED);
    }
    mr = nic_ioguard_region(s, &k);
    if (!mr) {
        qemu_log_mask(LOG_GUEST_ERROR, "ioguard-nic: a request with a PASID, "
                      "but no ioguard-iommu translates this device\n");
        return (IOMMUTLBEntry) { .perm = IOMMU_NONE };
    }
    /* What we keep of it goes with the IOMMU's INVALIDATE_IOTLB_PAGES. */
    k->listen_device_iotlb(mr, nic_atc_invalidate_pasids, s);
    return k->translate_pasid(mr, pasid & NIC_TE_PASID_MASK,
                              pasid & NIC_TE_PASID_PRIVILEGED, addr, write);
}

/*
 * One chunk of DMA (within a 4 KiB page) with ATS on. A translation the
 * IOMMU refused was logged by it as for an untranslated request; the NIC
 * reports it as a DMA error, as for a refused untranslated one.
 */
MemTxResult nic_ats_dma(IoguardNicState *s, uint64_t addr, void *buf,
                        uint32_t len, DMADirection dir, uint32_t pasid)
{
    bool write = dir == DMA_DIRECTION_FROM_DEVICE;
    unsigned need = write ? IOMMU_WO : IOMMU_RO;
    NicAtcEntry *e = nic_atc_lookup(s, addr, pasid);

    if (e && (e->perm & need)) {
        IOMMUMemoryRegion *mr;
        const IoguardIommuMemoryRegionClass *verifier =
            nic_atc_verifier(s, pasid, &mr);
        bool tagged = pasid & NIC_TE_PASID_VALID;

        s->atc_hits++;
        if (verifier) {
            verifier->ats_used(mr,
                               tagged ? (int32_t)(pasid & NIC_TE_PASID_MASK)
                                      : -1,
                               tagged && (pasid & NIC_TE_PASID_PRIVILEGED),
                               addr, e->target + (addr & e->mask), write,
                               e->generation);
        }
    } else {
        /* The IOMMU checks one access per request: what it checked is kept. */
        IOMMUTLBEntry t = nic_ats_translate(s, addr, write, pasid);

        s->atc_misses++;
        trace_ioguard_nic_ats_request(addr, write, t.translated_addr,
                                      t.addr_mask, t.perm != IOMMU_NONE);
        if (t.perm == IOMMU_NONE || !t.target_as) {
            return MEMTX_DECODE_ERROR;
        }
        if (e && e->iova == t.iova && e->mask == t.addr_mask &&
            e->target == t.translated_addr && e->as == t.target_as) {
            e->perm |= need;
        } else {
            if (e) {
                e->valid = false;
            }
            e = nic_atc_insert(s, &t, need, pasid);
        }
    }
    e->last_use = ++s->atc_clock;
    return dma_memory_rw(e->as, e->target + (addr & e->mask), buf, len, dir,
                         MEMTXATTRS_UNSPECIFIED);
}

static void nic_atc_region_add(MemoryListener *listener,
                               MemoryRegionSection *section)
{
    IoguardNicState *s = container_of(listener, IoguardNicState,
                                      atc_listener);
    NicAtcNotifier *an;
    Int128 end;

    if (!memory_region_is_iommu(section->mr)) {
        return;
    }
    an = g_new0(NicAtcNotifier, 1);
    end = int128_sub(int128_add(int128_make64(section->offset_within_region),
                                section->size), int128_one());
    iommu_notifier_init(&an->n, nic_atc_invalidate,
                        IOMMU_NOTIFIER_DEVIOTLB_UNMAP,
                        section->offset_within_region, int128_get64(end),
                        memory_region_iommu_attrs_to_index(
                            IOMMU_MEMORY_REGION(section->mr),
                            MEMTXATTRS_UNSPECIFIED));
    an->s = s;
    an->mr = section->mr;
    if (memory_region_register_iommu_notifier(section->mr, &an->n, NULL)) {
        /* An IOMMU without device-IOTLB notifications: nothing to hear. */
        g_free(an);
        return;
    }
    QLIST_INSERT_HEAD(&s->atc_notifiers, an, next);
    s->atc_verifier = (const IoguardIommuMemoryRegionClass *)
        object_class_dynamic_cast(object_get_class(OBJECT(section->mr)),
                                  TYPE_IOGUARD_IOMMU_MEMORY_REGION);
    s->atc_verified_mr = IOMMU_MEMORY_REGION(section->mr);
}

static void nic_atc_region_del(MemoryListener *listener,
                               MemoryRegionSection *section)
{
    IoguardNicState *s = container_of(listener, IoguardNicState,
                                      atc_listener);
    NicAtcNotifier *an;

    QLIST_FOREACH(an, &s->atc_notifiers, next) {
        if (an->mr == section->mr &&
            an->n.start == section->offset_within_region) {
            memory_region_unregister_iommu_notifier(an->mr, &an->n);
            QLIST_REMOVE(an, next);
            g_free(an);
            break;
        }
    }
    if (QLIST_EMPTY(&s->atc_notifiers)) {
        s->atc_verifier = NULL;
        s->atc_verified_mr = NULL;
    }
    /* The translations came from a region that is gone. */
    nic_atc_flush(s);
}

bool nic_ats_realize(IoguardNicState *s, Error **errp)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    if (!s->ats) {
        return true;
    }
    if (!pci_is_express(pdev)) {
        error_setg(errp, "ioguard-nic: ats=on needs a PCI Express bus: put "
                   "the NIC behind a pcie-root-port");
        return false;
    }
    if (pcie_endpoint_cap_init(pdev, 0) < 0) {
        error_setg(errp, "ioguard-nic: no room for the PCIe capability");
        return false;
    }
    pcie_ats_init(pdev, NIC_ATS_CAP_OFFSET, true);
    s->atc_listener = (MemoryListener) {
        .name = "ioguard-nic-atc",
        .region_add = nic_atc_region_add,
        .region_del = nic_atc_region_del,
    };
    memory_listener_register(&s->atc_listener, pci_get_address_space(pdev));
    return true;
}

void nic_ats_exit(IoguardNicState *s)
{
    if (s->ats && PCI_DEVICE(s)->exp.ats_cap) {
        memory_listener_unregister(&s->atc_listener);
    }
}

/* The guest turned ATS on or off (or wrote its control register). */
void nic_ats_config_written(IoguardNicState *s, uint32_t address, int len)
{
    uint32_t ctrl = PCI_DEVICE(s)->exp.ats_cap + PCI_ATS_CTRL;

    if (PCI_DEVICE(s)->exp.ats_cap && ranges_overlap(address, len, ctrl, 2)) {
        nic_atc_flush(s);
    }
}
