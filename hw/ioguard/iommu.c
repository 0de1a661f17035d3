/*
 * ioguard-iommu: an AMD-Vi compatible IOMMU for q35.
 *
 * This file is the QEMU plumbing only: the QOM device and its PCI function,
 * the MMIO window, one IOMMU address space per requester, and the host
 * services the engine needs (guest RAM, the IOMMU's MSI, time, logging).
 * The IOMMU notifiers are in iommu-notifiers.c.
 * The architected behaviour lives in the C++ engine, hw/ioguard/core.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "exec/address-spaces.h"
#include "hw/i386/apic_internal.h"
#include "hw/i386/pc.h"
#include "hw/i386/x86.h"
#include "hw/pci/msi.h"
#include "hw/pci/pci_bus.h"
#include "hw/qdev-properties.h"
#include "system/kvm.h"
#include "system/system.h"
#include "kvm/kvm_i386.h"
#include "migration/vmstate.h"
#include "hw/ioguard/fault-device.h"
#include "hw/ioguard/amd-vi-regs.h"
#include "hw/ioguard/iommu-engine.h"
#include "hw/ioguard/iommu.h"
#include "iommu-internal.h"
#include "trace.h"

/* ---- host services for the engine ---- */

/*
 * The IOMMU's own accesses (tables, command buffer, event log, completion
 * stores) are untranslated and must land in RAM: a table the guest points
 * at MMIO (our own registers included) or at nothing is a hardware error.
 * Reads are the page walks, on the DMA path: they copy from the RAM block
 * directly. Writes are rare and take the full path (dirty tracking).
 */
static bool ioguard_read_ram(void *opaque, uint64_t addr, void *buf,
                             uint64_t len)
{
    RCU_READ_LOCK_GUARD();

    while (len) {
        hwaddr xlat, chunk = len;
        MemoryRegion *mr = address_space_translate(&address_space_memory, addr,
                                                   &xlat, &chunk, false,
                                                   MEMTXATTRS_UNSPECIFIED);

        if (!memory_access_is_direct(mr, false, MEMTXATTRS_UNSPECIFIED)) {
            return false;
        }
        /* QEMU's generic fuzzer fills what a device reads (else nothing) */
        fuzz_dma_read_cb(addr, chunk, mr);
        memcpy(buf, (uint8_t *)memory_region_get_ram_ptr(mr) + xlat, chunk);
        addr += chunk;
        buf = (uint8_t *)buf + chunk;
        len -= chunk;
    }
    return true;
}

static bool ioguard_write_ram(void *opaque, uint64_t addr, const void *buf,
                              uint64_t len)
{
    RCU_READ_LOCK_GUARD();

    while (len) {
        hwaddr xlat, chunk = len;
        MemoryRegion *mr = address_space_translate(&address_space_memory, addr,
                                                   &xlat, &chunk, true,
                                                   MEMTXATTRS_UNSPECIFIED);

        if (!memory_access_is_direct(mr, true, MEMTXATTRS_UNSPECIFIED) ||
            address_space_write(&address_space_memory, addr,
                                MEMTXATTRS_UNSPECIFIED, buf, chunk) !=
            MEMTX_OK) {
            return false;
        }
        addr += chunk;
        buf = (const uint8_t *)buf + chunk;
        len -= chunk;
    }
    return true;
}

/*
 * The IOMMU's own MSI. Not msi_notify(): that goes through bus-master
 * memory, and Linux never sets Bus Master Enable on the IOMMU function.
 * The message goes out as the IOMMU's requester, so interrupt remapping
 * applies to it exactly as the guest set up the IOMMU's own DTE.
 */
static void ioguard_raise_interrupt(void *opaque)
{
    IoguardIommuState *s = opaque;
    PCIDevice *pdev = PCI_DEVICE(&s->pci);
    MSIMessage msg;

    if (!msi_enabled(pdev) || msi_is_masked(pdev, 0)) {
        return;
    }
    msg = msi_get_message(pdev, 0);
    address_space_stl_le(pci_device_iommu_address_space(pdev), msg.address,
                         msg.data, MEMTXATTRS_UNSPECIFIED, NULL);
}

static void ioguard_deliver_msi(void *opaque, uint64_t address, uint32_t data)
{
    apic_get_class(NULL)->send_msi(&(MSIMessage) {
        .address = address, .data = data });
}

static void ioguard_guest_error(void *opaque, const char *message)
{
    qemu_log_mask(LOG_GUEST_ERROR, "ioguard-iommu: %s\n", message);
}

static void ioguard_irt_invalidated(void *opaque, int devid)
{
    IoguardIommuState *s = opaque;

    /* KVM's split irqchip caches remapped routes: tell it. */
    x86_iommu_iec_notify_all(X86_IOMMU_DEVICE(s), devid < 0, 0, 0);
}

/*
 * A requester whose DMA is identity (IOMMU off, DTE V=0, passthrough with
 * IR=IW=1) sees system memory directly, so that it pays nothing for
 * translation; the engine says when that may have changed. Notifier users
 * drop everything they had: what they learnt under the old DTE (or, while
 * identity, through the direct alias) no longer holds.
 */
static void ioguard_space_update(IoguardDeviceSpace *ds)
{
    bool identity = ioguard_iommu_dma_is_identity(ds->iommu->engine,
                                                  ioguard_space_devid(ds));

    if (identity != ds->identity) {
        ioguard_notify_unmap_all(ds);
        ds->identity = identity;
        memory_region_transaction_begin();
        memory_region_set_enabled(&ds->direct, identity);
        memory_region_set_enabled(MEMORY_REGION(&ds->translated), !identity);
        memory_region_transaction_commit();
        trace_ioguard_space_identity(ioguard_space_devid(ds), identity);
        /*
         * UNMAP users registered as the region came back held identity;
         * MAP users (vfio) registered then were replayed the tables.
         */
        if (!(ds->notifier_flags & IOMMU_NOTIFIER_MAP)) {
            ioguard_notify_unmap_all(ds);
        }
    } else if (ds->notifier_flags) {
        ioguard_mark_recheck(ds, 0, UINT64_MAX);    /* the DTE may differ */
    }
}

void ioguard_for_each_space(IoguardIommuState *s,
                            void (*fn)(IoguardDeviceSpace *ds, void *opaque),
                            void *opaque)
{
    GHashTableIter iter;
    IoguardDeviceSpace **spaces;

    if (!s->bus_spaces) {
        return;                 /* not realized */
    }
    g_hash_table_iter_init(&iter, s->bus_spaces);
    while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&spaces)) {
        for (int devfn = 0; devfn < PCI_DEVFN_MAX; devfn++) {
            if (spaces[devfn]) {
                fn(spaces[devfn], opaque);
            }
        }
    }
}

static void ioguard_update_space_of(IoguardDeviceSpace *ds, void *opaque)
{
    int devid = *(int *)opaque;

    if (devid < 0 || ioguard_space_devid(ds) == devid) {
        ioguard_space_update(ds);
    }
}

static void ioguard_device_table_changed(void *opaque, int devid)
{
    ioguard_for_each_space(opaque, ioguard_update_space_of, &devid);
}

static uint64_t ioguard_now_ns(void *opaque)
{
    return qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
}

static void ioguard_command_executed(void *opaque, const uint32_t cmd[4],
                                     uint64_t addr)
{
    const char *name = ioguard_command_name(cmd[1] >> 28);

    trace_ioguard_command(addr, name ? name : "illegal", cmd[0], cmd[1],
                          cmd[2], cmd[3]);
}

static void ioguard_fault_recorded(void *opaque, const IoguardFaultRecord *r)
{
    const char *reason = ioguard_fault_reason_name(r->reason);

    if (r->delivery == IOGUARD_DELIVERY_NOT_REPORTED) {
        trace_ioguard_verifier_finding(r->seq, reason, r->devid, r->address,
                                       ioguard_access_name(r->access),
                                       r->stale_target, r->now_mapped,
                                       r->current_target);
    } else {
        trace_ioguard_event(r->seq, reason, r->event_type, r->devid,
                            r->domain, r->address,
                            ioguard_access_name(r->access),
                            ioguard_delivery_name(r->delivery));
    }
}

/* A completion that a fault rule delayed is due (ioguard_wake_at). */
static void ioguard_fault_timer(void *opaque)
{
    IoguardIommuState *s = opaque;

    ioguard_iommu_run_timers(s->engine);
    ioguard_sync_notifiers(s);
}

static void ioguard_wake_at(void *opaque, uint64_t deadline_ns)
{
    IoguardIommuState *s = opaque;

    timer_mod(s->fault_timer, deadline_ns);
}

typedef struct IoguardPageResponse {
    uint16_t devid;
    bool pasid_valid;
    uint32_t pasid;
    uint16_t group;
    unsigned code;
} IoguardPageResponse;

static void ioguard_respond_to(IoguardDeviceSpace *ds, void *opaque)
{
    IoguardPageResponse *r = opaque;

    if (ds->page_response && ioguard_space_devid(ds) == r->devid) {
        ds->page_response(ds->page_response_opaque, r->pasid_valid, r->pasid,
                          r->group, r->code);
    }
}

/* COMPLETE_PPR_REQUEST: the PRG response goes to the requester's device. */
static void ioguard_page_response(void *opaque, uint16_t devid,
                                  bool pasid_valid, uint32_t pasid,
                                  uint16_t group, unsigned code)
{
    IoguardPageResponse r = { devid, pasid_valid, pasid, group, code };

    trace_ioguard_page_response(devid, pasid_valid, pasid, group, code);
    ioguard_for_each_space(opaque, ioguard_respond_to, &r);
}

static const IoguardHostOps ioguard_host_ops = {
    .read_ram = ioguard_read_ram,
    .write_ram = ioguard_write_ram,
    .raise_interrupt = ioguard_raise_interrupt,
    .deliver_msi = ioguard_deliver_msi,
    .guest_error = ioguard_guest_error,
    .interrupt_table_invalidated = ioguard_irt_invalidated,
    .device_table_changed = ioguard_device_table_changed,
    .now_ns = ioguard_now_ns,
    .command_executed = ioguard_command_executed,
    .fault_recorded = ioguard_fault_recorded,
    .wake_at = ioguard_wake_at,
    .iommu_pages_invalidated = ioguard_iommu_pages_invalidated,
    .device_iotlb_invalidated = ioguard_device_iotlb_invalidated,
    .page_response = ioguard_page_response,
};

/* ---- MMIO window ---- */

static uint64_t ioguard_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    IoguardIommuState *s = opaque;
    uint64_t value = ioguard_iommu_mmio_read(s->engine, addr, size);

    trace_ioguard_mmio_read(addr, size, value);
    return value;
}

static void ioguard_mmio_write(void *opaque, hwaddr addr, uint64_t value,
                               unsigned size)
{
    IoguardIommuState *s = opaque;

    trace_ioguard_mmio_write(addr, size, value);
    ioguard_iommu_mmio_write(s->engine, addr, value, size);
    ioguard_sync_notifiers(s);
}

static const MemoryRegionOps ioguard_mmio_ops = {
    .read = ioguard_mmio_read,
    .write = ioguard_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 1, .max_access_size = 8 },
};

/* ---- DMA translation ---- */

static IOMMUTLBEntry ioguard_translate(IOMMUMemoryRegion *iommu_mr,
                                       hwaddr addr, IOMMUAccessFlags flag,
                                       int iommu_idx)
{
    IoguardDeviceSpace *ds = container_of(iommu_mr, IoguardDeviceSpace,
                                          translated);
    uint16_t devid = ioguard_space_devid(ds);
    IoguardTranslation t;
    IOMMUTLBEntry entry;

    ioguard_iommu_translate(ds->iommu->engine, devid, addr, flag, &t);
    trace_ioguard_translate(devid, addr, flag, t.translated_addr, t.addr_mask,
                            t.perm);
    entry = (IOMMUTLBEntry) {
        .target_as = &address_space_memory,
        .iova = addr & ~t.addr_mask,
        .translated_addr = t.translated_addr,
        .addr_mask = t.addr_mask,
        .perm = t.perm,
    };
    /* MAP users' records are the tables' entries (ioguard_replay). */
    if (ds->notifier_flags && !(ds->notifier_flags & IOMMU_NOTIFIER_MAP) &&
        t.perm != IOGUARD_PERM_NONE) {
        ioguard_record(ds, &entry);
    }
    return entry;
}

/* ---- interrupt remapping ---- */

static MemTxResult ioguard_interrupt_write(void *opaque, hwaddr addr,
                                           uint64_t value, unsigned size,
                                           MemTxAttrs attrs)
{
    IoguardDeviceSpace *ds = opaque;
    IoguardIommuState *s = ds->iommu;
    uint16_t devid = ioguard_space_devid(ds);
    IoguardMsi in = { IOGUARD_MSI_ADDR_FIRST + addr, value }, out;
    bool deliver = ioguard_iommu_remap_msi(s->engine, devid, &in, &out);

    trace_ioguard_msi_remap(devid, in.address, in.data, out.address, out.data,
                            deliver);
    if (!deliver) {
        return MEMTX_ERROR;
    }
    ioguard_deliver_msi(s, out.address, out.data);
    return MEMTX_OK;
}

static MemTxResult ioguard_interrupt_read(void *opaque, hwaddr addr,
                                          uint64_t *data, unsigned size,
                                          MemTxAttrs attrs)
{
    *data = 0;
    return MEMTX_OK;
}

static const MemoryRegionOps ioguard_interrupt_ops = {
    .read_with_attrs = ioguard_interrupt_read,
    .write_with_attrs = ioguard_interrupt_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 4 },
    .impl = { .min_access_size = 4, .max_access_size = 4 },
};

/* KVM (split irqchip) asks here when it builds MSI routes. */
static int ioguard_int_remap(X86IOMMUState *iommu, MSIMessage *src,
                             MSIMessage *dst, uint16_t sid)
{
    IoguardIommuState *s = IOGUARD_IOMMU(iommu);
    IoguardMsi in = { src->address, src->data }, out;

    if (sid == X86_IOMMU_SID_INVALID) {
        sid = IOGUARD_IOAPIC_DEVID;
    }
    if (!ioguard_iommu_remap_msi(s->engine, sid, &in, &out)) {
        return -EINVAL;
    }
    dst->address = out.address;
    dst->data = out.data;
    return 0;
}

/* ---- one address space per requester ---- */

static AddressSpace *ioguard_get_address_space(PCIBus *bus, void *opaque,
                                               int devfn)
{
    IoguardIommuState *s = opaque;
    IoguardDeviceSpace **spaces = g_hash_table_lookup(s->bus_spaces, bus);
    IoguardDeviceSpace *ds;
    g_autofree char *name = NULL;

    /* The IOMMU's own MSIs and table accesses are never translated. */
    if (bus == pci_get_bus(PCI_DEVICE(&s->pci)) &&
        devfn == PCI_DEVICE(&s->pci)->devfn) {
        return &address_space_memory;
    }
    if (!spaces) {
        spaces = g_new0(IoguardDeviceSpace *, PCI_DEVFN_MAX);
        g_hash_table_insert(s->bus_spaces, bus, spaces);
    }
    if (spaces[devfn]) {
        return &spaces[devfn]->as;
    }

    ds = g_new0(IoguardDeviceSpace, 1);
    ds->iommu = s;
    ds->bus = bus;
    ds->devfn = devfn;
    name = g_strdup_printf("ioguard-%s-%02x.%x", bus->qbus.name,
                           PCI_SLOT(devfn), PCI_FUNC(devfn));

    memory_region_init(&ds->root, OBJECT(s), name, UINT64_MAX);
    memory_region_init_iommu(&ds->translated, sizeof(ds->translated),
                             TYPE_IOGUARD_IOMMU_MEMORY_REGION, OBJECT(s),
                             name, UINT64_MAX);
    memory_region_add_subregion_overlap(&ds->root, 0,
                                        MEMORY_REGION(&ds->translated), 0);
    memory_region_init_alias(&ds->direct, OBJECT(s), "ioguard-direct",
                             get_system_memory(), 0, UINT64_MAX);
    memory_region_add_subregion_overlap(&ds->root, 0, &ds->direct, 0);
    memory_region_init_io(&ds->interrupts, OBJECT(s), &ioguard_interrupt_ops,
                          ds, "ioguard-interrupts", IOGUARD_MSI_ADDR_SIZE);
    memory_region_add_subregion_overlap(&ds->root, IOGUARD_MSI_ADDR_FIRST,
                                        &ds->interrupts, 1);
    /* Start as "translated" and let the engine decide. */
    memory_region_set_enabled(&ds->direct, false);
    ds->identity = false;
    ioguard_notifiers_init(ds);
    address_space_init(&ds->as, &ds->root, name);
    trace_ioguard_device_space(PCI_BUILD_BDF(pci_bus_num(bus), devfn), name);

    spaces[devfn] = ds;
    ioguard_space_update(ds);
    return &ds->as;
}

/*
 * An assigned device (vfio-pci, cold- or hot-plugged) mirrors the tables
 * into the host's IOMMU through MAP notifiers, which the guest must make
 * possible by invalidating after it maps: dma-remap=on says so (NpCache).
 * Without it the notifier would be refused only when the guest first
 * translates the device, and vfio then stops QEMU ("DMA mapping failed"):
 * the guest would decide when QEMU dies. So the device is refused here.
 */
static bool ioguard_set_iommu_device(PCIBus *bus, void *opaque, int devfn,
                                     HostIOMMUDevice *hiod, Error **errp)
{
    IoguardIommuState *s = opaque;
    PCIDevice *pdev = pci_find_device(bus, pci_bus_num(bus), devfn);

    if (!s->dma_remap) {
        error_setg(errp, "ioguard-iommu: %s '%s' at %02x:%02x.%x needs MAP "
                   "notifications: add dma-remap=on to -device ioguard-iommu",
                   pdev ? object_get_typename(OBJECT(pdev)) : "device",
                   pdev && DEVICE(pdev)->id ? DEVICE(pdev)->id : "",
                   pci_bus_num(bus), PCI_SLOT(devfn), PCI_FUNC(devfn));
        return false;
    }
    return true;
}

static const PCIIOMMUOps ioguard_iommu_ops = {
    .get_address_space = ioguard_get_address_space,
    .set_iommu_device = ioguard_set_iommu_device,
};

/* ---- the device ---- */

static void ioguard_iommu_faults_changed_cb(DeviceState *dev)
{
    IoguardIommuState *s = IOGUARD_IOMMU(dev);

    /* The buffer may move on (a stuck rule gone), records be checked. */
    ioguard_iommu_faults_changed(s->engine);
    ioguard_sync_notifiers(s);
}

/*
 * QEMU sets each PCI device's DMA address space up when the machine is
 * complete (or when the device is hot-plugged), not when it is created, so
 * a device given before -device ioguard-iommu is translated like any other.
 * vfio-pci is the exception: it binds its container to the address space it
 * finds when it is realized, which before the IOMMU is untranslated memory.
 * Such a device would bypass the IOMMU without a word: refuse to start.
 */
static void ioguard_find_bypassing_device(PCIBus *bus, PCIDevice *pdev,
                                          void *opaque)
{
    PCIDevice **found = opaque;

    if (!*found && object_dynamic_cast(OBJECT(pdev), "vfio-pci")) {
        *found = pdev;
    }
}

static void ioguard_find_bypassing_device_on_bus(PCIBus *bus, void *opaque)
{
    pci_for_each_device_under_bus(bus, ioguard_find_bypassing_device, opaque);
}

static bool ioguard_check_no_bypass(PCIBus *root, Error **errp)
{
    PCIDevice *found = NULL;

    pci_for_each_bus(root, ioguard_find_bypassing_device_on_bus, &found);
    if (found) {
        error_setg(errp, "ioguard-iommu: %s '%s' at %02x:%02x.%x was created "
                   "before the IOMMU and would bypass it: put -device "
                   "ioguard-iommu before it",
                   object_get_typename(OBJECT(found)),
                   DEVICE(found)->id ? DEVICE(found)->id : "",
                   pci_dev_bus_num(found), PCI_SLOT(found->devfn),
                   PCI_FUNC(found->devfn));
        return false;
    }
    return true;
}

static void ioguard_iommu_realize(DeviceState *dev, Error **errp)
{
    IoguardIommuState *s = IOGUARD_IOMMU(dev);
    X86IOMMUState *x86 = X86_IOMMU_DEVICE(dev);
    PCMachineState *pcms = PC_MACHINE(qdev_get_machine());
    X86MachineState *x86ms = X86_MACHINE(qdev_get_machine());
    PCIBus *bus = pcms->pcibus;
    IoguardConfig config = {
        .intremap = x86_iommu_ir_supported(x86),
        .ga = s->ga,
        .xtsup = s->xtsup,
        .guest_translation = s->guest_translation,
        .stats = s->stats,
        .fault_records = s->fault_records,
        .verifier = s->verifier,
        .prefetch_depth = s->prefetch_depth,
        .latency_model = s->latency_model,
        .round_trip_ns = s->round_trip_ns,
        .walk_read_ns = s->walk_read_ns,
    };
    IoguardStreamingRule rules[IOGUARD_STREAMING_RULES_MAX];
    char rule_error[160];
    int nrules;

    if (s->fault_records > IOGUARD_FAULT_RECORDS_MAX) {
        error_setg(errp, "ioguard-iommu: fault-records=%" PRIu32 " is more "
                   "than %d", s->fault_records, IOGUARD_FAULT_RECORDS_MAX);
        return;
    }
    if (s->prefetch_depth > IOGUARD_PREFETCH_DEPTH_MAX) {
        error_setg(errp, "ioguard-iommu: prefetch-depth=%" PRIu32 " is more "
                   "than %d", s->prefetch_depth, IOGUARD_PREFETCH_DEPTH_MAX);
        return;
    }
    nrules = ioguard_parse_streaming_rules(s->streaming, rules,
                                           IOGUARD_STREAMING_RULES_MAX,
                                           rule_error, sizeof(rule_error));
    if (nrules < 0) {
        error_setg(errp, "ioguard-iommu: streaming='%s': %s", s->streaming,
                   rule_error);
        return;
    }
    if (s->xtsup && !s->ga) {
        error_setg(errp, "ioguard-iommu: xtsup=on needs ga=on (x2APIC "
                   "destinations only fit 128-bit remapping entries)");
        return;
    }
    if (x86ms->apic_id_limit > 255 && !s->xtsup) {
        error_setg(errp, "ioguard-iommu: more than 255 APIC IDs need "
                   "xtsup=on (x2APIC interrupt destinations)");
        return;
    }
    if (s->xtsup && kvm_enabled() && kvm_irqchip_is_split() &&
        !kvm_enable_x2apic()) {
        error_setg(errp, "ioguard-iommu: xtsup=on needs x2APIC support "
                   "from KVM");
        return;
    }

    if (!ioguard_check_no_bypass(bus, errp)) {
        return;
    }

    s->faults = ioguard_fault_device_new(dev, IOGUARD_FAULT_SITES_IOMMU,
                                         s->fault_rules, s->fault_seed,
                                         ioguard_iommu_faults_changed_cb,
                                         errp);
    if (!s->faults) {
        error_prepend(errp, "ioguard-iommu: ");
        return;
    }
    config.faults = s->faults;
    s->fault_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, ioguard_fault_timer, s);
    s->engine = ioguard_iommu_new(&ioguard_host_ops, s, &config);
    for (int i = 0; i < nrules; i++) {
        ioguard_iommu_add_streaming_rule(s->engine, &rules[i]);
    }
    s->bus_spaces = g_hash_table_new_full(NULL, NULL, NULL, NULL);

    /* The PCI function first: its own DMA and MSIs stay untranslated. */
    if (!qdev_realize(DEVICE(&s->pci), &bus->qbus, errp)) {
        return;
    }
    if (x86->dt_supported) {
        /* ATS: endpoints may cache translations (INVALIDATE_IOTLB_PAGES) */
        uint8_t *cap = PCI_DEVICE(&s->pci)->config + s->pci.cap_offset;

        pci_set_word(cap + 2, pci_get_word(cap + 2) |
                     1u << (IOMMU_CAP_IOTLB - 16));
    }
    if (s->dma_remap) {
        /*
         * NpCache: the guest invalidates after it maps, so that MAP
         * notifier users (vfio-pci) hear of new mappings too.
         */
        uint8_t *cap = PCI_DEVICE(&s->pci)->config + s->pci.cap_offset;

        pci_set_word(cap + 2, pci_get_word(cap + 2) |
                     1u << (IOMMU_CAP_NPCACHE - 16));
    }

    memory_region_init_io(&s->mmio, OBJECT(s), &ioguard_mmio_ops, s,
                          "ioguard-iommu-mmio", IOGUARD_MMIO_SIZE);
    memory_region_add_subregion(get_system_memory(), IOGUARD_MMIO_BASE,
                                &s->mmio);

    /* The IOAPIC's interrupts come from the southbridge's requester ID. */
    x86ms->ioapic_as = ioguard_get_address_space(
        bus, s, IOGUARD_IOAPIC_DEVID & 0xff);
    pci_setup_iommu(bus, &ioguard_iommu_ops, s);
}

static void ioguard_iommu_reset_hold(Object *obj, ResetType type)
{
    IoguardIommuState *s = IOGUARD_IOMMU(obj);

    if (s->engine) {
        ioguard_iommu_reset(s->engine);
        ioguard_device_table_changed(s, -1);
        ioguard_sync_notifiers(s);
    }
}

/* Requesters that see memory directly now (ioguard_space_update). */
static void ioguard_count_identity(IoguardDeviceSpace *ds, void *opaque)
{
    *(unsigned *)opaque += ds->identity;
}

unsigned ioguard_identity_requesters(IoguardIommuState *s)
{
    unsigned n = 0;

    ioguard_for_each_space(s, ioguard_count_identity, &n);
    return n;
}

static void ioguard_iommu_instance_init(Object *obj)
{
    IoguardIommuState *s = IOGUARD_IOMMU(obj);

    object_initialize_child(obj, "pci", &s->pci, TYPE_IOGUARD_IOMMU_PCI);
}

static void ioguard_iommu_finalize(Object *obj)
{
    IoguardIommuState *s = IOGUARD_IOMMU(obj);

    ioguard_iommu_free(s->engine);
    ioguard_fault_device_free(s->faults);
    g_free(s->saved_engine);
    g_free(s->saved_faults);
    if (s->fault_timer) {
        timer_free(s->fault_timer);
    }
}

static const Property ioguard_iommu_properties[] = {
    DEFINE_PROP_BOOL("ga", IoguardIommuState, ga, true),
    DEFINE_PROP_BOOL("xtsup", IoguardIommuState, xtsup, false),
    DEFINE_PROP_BOOL("guest-translation", IoguardIommuState,
                     guest_translation, false),
    DEFINE_PROP_BOOL("statistics", IoguardIommuState, stats, true),
    DEFINE_PROP_UINT32("fault-records", IoguardIommuState, fault_records, 256),
    DEFINE_PROP_BOOL("verifier", IoguardIommuState, verifier, false),
    DEFINE_PROP_UINT32("prefetch-depth", IoguardIommuState, prefetch_depth,
                       32),
    DEFINE_PROP_STRING("streaming", IoguardIommuState, streaming),
    DEFINE_PROP_BOOL("latency-model", IoguardIommuState, latency_model, false),
    DEFINE_PROP_UINT32("round-trip-ns", IoguardIommuState, round_trip_ns,
                       1000),
    DEFINE_PROP_UINT32("walk-read-ns", IoguardIommuState, walk_read_ns, 100),
    DEFINE_PROP_STRING("fault-rules", IoguardIommuState, fault_rules),
    DEFINE_PROP_UINT64("fault-seed", IoguardIommuState, fault_seed, 0),
    DEFINE_PROP_BOOL("dma-remap", IoguardIommuState, dma_remap, false),
};

/*
 * Snapshots and migration: the engine's state and the fault injector's go
 * as two opaque buffers, made just before saving and checked field by
 * field when loaded (a malformed stream fails the load, not QEMU).
 */
static int ioguard_iommu_pre_save(void *opaque)
{
    IoguardIommuState *s = opaque;
    size_t size;

    g_free(s->saved_engine);
    s->saved_engine = ioguard_iommu_save_state(s->engine, &size);
    s->saved_engine_size = size;
    g_free(s->saved_faults);
    s->saved_faults = ioguard_faults_save(s->faults, &size);
    s->saved_faults_size = size;
    return 0;
}

static void ioguard_iommu_drop_saved(IoguardIommuState *s)
{
    g_free(s->saved_engine);
    g_free(s->saved_faults);
    s->saved_engine = s->saved_faults = NULL;
    s->saved_engine_size = s->saved_faults_size = 0;
}

static int ioguard_iommu_post_save(void *opaque)
{
    ioguard_iommu_drop_saved(opaque);
    return 0;
}

static int ioguard_iommu_post_load(void *opaque, int version_id)
{
    IoguardIommuState *s = opaque;
    bool ok = ioguard_iommu_load_state(s->engine, s->saved_engine,
                                       s->saved_engine_size) &&
              ioguard_faults_load(s->faults, s->saved_faults,
                                  s->saved_faults_size);

    ioguard_iommu_drop_saved(s);
    if (!ok) {
        error_report("ioguard-iommu: the saved state is malformed");
        return -EINVAL;
    }
    ioguard_sync_notifiers(s);
    return 0;
}

static const VMStateDescription vmstate_ioguard_iommu = {
    .name = "ioguard-iommu",
    .version_id = 1,
    .minimum_version_id = 1,
    .priority = MIG_PRI_IOMMU,      /* before the devices that DMA through it */
    .pre_save = ioguard_iommu_pre_save,
    .post_save = ioguard_iommu_post_save,
    .post_load = ioguard_iommu_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(saved_engine_size, IoguardIommuState),
        VMSTATE_VBUFFER_ALLOC_UINT32(saved_engine, IoguardIommuState, 1, NULL,
                                     saved_engine_size),
        VMSTATE_UINT32(saved_faults_size, IoguardIommuState),
        VMSTATE_VBUFFER_ALLOC_UINT32(saved_faults, IoguardIommuState, 1, NULL,
                                     saved_faults_size),
        VMSTATE_END_OF_LIST()
    }
};

static void ioguard_iommu_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);
    X86IOMMUClass *x86c = X86_IOMMU_DEVICE_CLASS(klass);

    x86c->realize = ioguard_iommu_realize;
    x86c->int_remap = ioguard_int_remap;
    rc->phases.hold = ioguard_iommu_reset_hold;
    dc->vmsd = &vmstate_ioguard_iommu;
    dc->hotpluggable = false;
    dc->desc = "ioguard AMD-Vi compatible IOMMU";
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    device_class_set_props(dc, ioguard_iommu_properties);
}

/* ---- the PCI function ---- */

static void ioguard_iommu_pci_realize(PCIDevice *pdev, Error **errp)
{
    IoguardIommuPciState *p = IOGUARD_IOMMU_PCI(pdev);
    uint8_t *cap;
    int off;

    off = pci_add_capability(pdev, IOGUARD_CAP_ID, 0, IOGUARD_CAP_SIZE, errp);
    if (off < 0) {
        return;
    }
    p->cap_offset = off;
    if (msi_init(pdev, 0, 1, true, false, errp) < 0) {
        return;
    }

    /*
     * Capability header: CapType 011b, EFRSup (the EFR is at MMIO 0x30),
     * NpCache=0 so that Linux may use lazy invalidation; IotlbSup comes
     * with device-iotlb=on, NpCache with dma-remap=on (ioguard_iommu_realize).
     * The rest is read-only and mirrors the IVRS.
     */
    cap = pdev->config + off;
    pci_set_word(cap + 2, (IOGUARD_CAP_HEADER_TYPE | IOGUARD_CAP_HEADER_REV |
                           1u << IOMMU_CAP_EFR) >> 16);
    pci_set_long(cap + IOGUARD_CAP_BASE_LO, (IOGUARD_MMIO_BASE & 0xffffc000) |
                 1);
    pci_set_long(cap + IOGUARD_CAP_BASE_HI, IOGUARD_MMIO_BASE >> 32);
    pci_set_long(cap + IOGUARD_CAP_RANGE, 0xff000000);  /* all of bus 0 */
    pci_set_long(cap + IOGUARD_CAP_MISC, 48u << 8 | 64u << 15);
}

static void ioguard_iommu_pci_reset(DeviceState *dev)
{
    msi_reset(PCI_DEVICE(dev));
}

static const VMStateDescription vmstate_ioguard_iommu_pci = {
    .name = "ioguard-iommu-pci",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, IoguardIommuPciState),
        VMSTATE_END_OF_LIST()
    }
};

static void ioguard_iommu_pci_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    dc->vmsd = &vmstate_ioguard_iommu_pci;
    k->vendor_id = IOGUARD_PCI_VENDOR_ID;
    k->device_id = IOGUARD_IOMMU_PCI_DEVICE_ID;
    k->class_id = IOGUARD_PCI_CLASS_IOMMU;
    k->realize = ioguard_iommu_pci_realize;
    device_class_set_legacy_reset(dc, ioguard_iommu_pci_reset);
    dc->desc = "ioguard IOMMU PCI function";
    /* Created by ioguard-iommu, never on its own. */
    dc->user_creatable = false;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

/* ---- ATS and the DMA verifier (IoguardIommuMemoryRegionClass) ---- */

static uint64_t ioguard_ats_generation(IOMMUMemoryRegion *iommu_mr)
{
    IoguardDeviceSpace *ds = container_of(iommu_mr, IoguardDeviceSpace,
                                          translated);

    return ioguard_iommu_device_iotlb_generation(ds->iommu->engine);
}

static void ioguard_ats_used(IOMMUMemoryRegion *iommu_mr, int32_t pasid,
                             bool privileged, uint64_t iova, uint64_t target,
                             bool write, uint64_t generation)
{
    IoguardDeviceSpace *ds = container_of(iommu_mr, IoguardDeviceSpace,
                                          translated);

    ioguard_iommu_ats_used(ds->iommu->engine, ioguard_space_devid(ds), pasid,
                           privileged, iova, target,
                           write ? IOGUARD_PERM_WRITE : IOGUARD_PERM_READ,
                           generation);
}

static IOMMUTLBEntry ioguard_translate_pasid(IOMMUMemoryRegion *iommu_mr,
                                             uint32_t pasid, bool privileged,
                                             hwaddr addr, bool write)
{
    IoguardDeviceSpace *ds = container_of(iommu_mr, IoguardDeviceSpace,
                                          translated);
    uint16_t devid = ioguard_space_devid(ds);
    IoguardTranslation t;

    ioguard_iommu_translate_pasid(ds->iommu->engine, devid, pasid, privileged,
                                  addr, write ? IOGUARD_PERM_WRITE :
                                                IOGUARD_PERM_READ, &t);
    trace_ioguard_translate_pasid(devid, pasid, privileged, addr, write,
                                  t.translated_addr, t.addr_mask, t.perm);
    return (IOMMUTLBEntry) {
        .target_as = &address_space_memory,
        .iova = addr & ~t.addr_mask,
        .translated_addr = t.translated_addr,
        .addr_mask = t.addr_mask,
        .perm = t.perm,
    };
}

static unsigned ioguard_page_request(IOMMUMemoryRegion *iommu_mr,
                                     IoguardPageRequest *request,
                                     IoguardPageResponseFn *respond,
                                     void *opaque)
{
    IoguardDeviceSpace *ds = container_of(iommu_mr, IoguardDeviceSpace,
                                          translated);
    unsigned outcome;

    ds->page_response = respond;
    ds->page_response_opaque = opaque;
    request->devid = ioguard_space_devid(ds);
    outcome = ioguard_iommu_page_request(ds->iommu->engine, request);
    trace_ioguard_page_request(request->devid, request->pasid_valid,
                               request->pasid, request->address,
                               request->group, request->last, outcome);
    return outcome;
}

static void ioguard_listen_device_iotlb(IOMMUMemoryRegion *iommu_mr,
                                        IoguardDeviceIotlbFn *fn,
                                        void *opaque)
{
    IoguardDeviceSpace *ds = container_of(iommu_mr, IoguardDeviceSpace,
                                          translated);

    ds->device_iotlb = fn;
    ds->device_iotlb_opaque = opaque;
}

static void ioguard_forget_device(IOMMUMemoryRegion *iommu_mr, void *opaque)
{
    IoguardDeviceSpace *ds = container_of(iommu_mr, IoguardDeviceSpace,
                                          translated);

    if (ds->page_response_opaque == opaque) {
        ds->page_response = NULL;
        ds->page_response_opaque = NULL;
    }
    if (ds->device_iotlb_opaque == opaque) {
        ds->device_iotlb = NULL;
        ds->device_iotlb_opaque = NULL;
    }
}

static void ioguard_iommu_memory_region_class_init(ObjectClass *klass,
                                                   void *data)
{
    IOMMUMemoryRegionClass *imrc = IOMMU_MEMORY_REGION_CLASS(klass);
    IoguardIommuMemoryRegionClass *ic =
        (IoguardIommuMemoryRegionClass *)klass;

    ic->ats_generation = ioguard_ats_generation;
    ic->ats_used = ioguard_ats_used;
    ic->translate_pasid = ioguard_translate_pasid;
    ic->page_request = ioguard_page_request;
    ic->listen_device_iotlb = ioguard_listen_device_iotlb;
    ic->forget_device = ioguard_forget_device;

    imrc->translate = ioguard_translate;
    imrc->notify_flag_changed = ioguard_notify_flag_changed;
    imrc->replay = ioguard_replay;
}

static const TypeInfo ioguard_types[] = {
    {
        .name = TYPE_IOGUARD_IOMMU,
        .parent = TYPE_X86_IOMMU_DEVICE,
        .instance_size = sizeof(IoguardIommuState),
        .instance_init = ioguard_iommu_instance_init,
        .instance_finalize = ioguard_iommu_finalize,
        .class_init = ioguard_iommu_class_init,
    }, {
        .name = TYPE_IOGUARD_IOMMU_PCI,
        .parent = TYPE_PCI_DEVICE,
        .instance_size = sizeof(IoguardIommuPciState),
        .class_init = ioguard_iommu_pci_class_init,
        .interfaces = (InterfaceInfo[]) {
            { INTERFACE_CONVENTIONAL_PCI_DEVICE },
            { },
        },
    }, {
        .name = TYPE_IOGUARD_IOMMU_MEMORY_REGION,
        .parent = TYPE_IOMMU_MEMORY_REGION,
        .class_size = sizeof(IoguardIommuMemoryRegionClass),
        .class_init = ioguard_iommu_memory_region_class_init,
    },
};

DEFINE_TYPES(ioguard_types)
