/*
 * The ACPI IVRS table that tells the guest about ioguard-iommu.
 *
 * One IOMMU is described twice, as IVHD type 10h and then 11h (with the
 * EFR image): Linux 6.x picks the last type it knows for the first IOMMU.
 * The device entries cover every requester ID on every bus, then alias
 * the devices behind conventional PCI bridges to the ID they use on the
 * wire, and name the IOAPIC's requester for interrupt remapping.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/acpi/aml-build.h"
#include "hw/pci/pci_bridge.h"
#include "hw/pci/pci_bus.h"
#include "hw/pci/pcie.h"
#include "hw/pci-host/q35.h"
#include "hw/ioguard/amd-vi-regs.h"
#include "hw/ioguard/iommu-engine.h"
#include "hw/ioguard/iommu.h"

/* IVHD device entry types (Linux: IVHD_DEV_*) */
#define IVHD_DEV_RANGE_START        0x03
#define IVHD_DEV_RANGE_END          0x04
#define IVHD_DEV_ALIAS_RANGE        0x43
#define IVHD_DEV_SPECIAL            0x48
#define IVHD_SPECIAL_IOAPIC         1

/* The IOAPIC ID QEMU's MADT gives the (only) IOAPIC. */
#define IOGUARD_IOAPIC_ID           0

static void ivhd_entry4(GArray *blob, uint8_t type, uint16_t devid)
{
    build_append_int_noprefix(blob, type | (uint32_t)devid << 8, 4);
}

/*
 * Conventional devices behind a bridge reach the IOMMU with the bridge's
 * requester ID (or, behind a PCIe-to-PCI bridge, with devfn 0 of its
 * secondary bus): the same choice pci_device_iommu_address_space() makes.
 */
static void ivrs_add_aliases(PCIBus *bus, PCIDevice *dev, void *opaque)
{
    GArray *blob = opaque;
    PCIBus *sec_bus;
    uint8_t sec, sub;
    uint16_t first, alias;

    if (!object_dynamic_cast(OBJECT(dev), TYPE_PCI_BRIDGE)) {
        return;
    }
    sec_bus = pci_bridge_get_sec_bus(PCI_BRIDGE(dev));
    sec = pci_bus_num(sec_bus);
    sub = dev->config[PCI_SUBORDINATE_BUS];
    if (pci_bus_is_express(sec_bus)) {
        pci_for_each_device_under_bus(sec_bus, ivrs_add_aliases, blob);
        return;
    }
    first = PCI_BUILD_BDF(sec, 0);
    if (pci_is_express(dev) &&
        pcie_cap_get_type(dev) == PCI_EXP_TYPE_PCI_BRIDGE) {
        alias = first;
    } else {
        alias = PCI_BUILD_BDF(pci_bus_num(bus), dev->devfn);
    }
    build_append_int_noprefix(blob, IVHD_DEV_ALIAS_RANGE |
                              (uint32_t)first << 8, 4);
    build_append_int_noprefix(blob, (uint32_t)alias << 8, 4);
    ivhd_entry4(blob, IVHD_DEV_RANGE_END, PCI_BUILD_BDF(sub, 0xff));
}

static int ivrs_walk_host_bridges(Object *obj, void *opaque)
{
    if (object_dynamic_cast(obj, TYPE_PCI_HOST_BRIDGE)) {
        PCIBus *bus = PCI_HOST_BRIDGE(obj)->bus;

        if (bus && !pci_bus_bypass_iommu(bus)) {
            pci_for_each_device_under_bus(bus, ivrs_add_aliases, opaque);
        }
    }
    return 0;
}

static GArray *ivrs_device_entries(IoguardIommuState *s)
{
    GArray *blob = g_array_new(false, true, 1);

    /* Every requester ID, so that every DMA goes through a DTE. */
    ivhd_entry4(blob, IVHD_DEV_RANGE_START, 0x0000);
    ivhd_entry4(blob, IVHD_DEV_RANGE_END, 0xffff);
    object_child_foreach_recursive(object_get_root(), ivrs_walk_host_bridges,
                                   blob);
    if (x86_iommu_ir_supported(X86_IOMMU_DEVICE(s))) {
        /* handle = IOAPIC ID, requester 00:14.0, variety IOAPIC */
        build_append_int_noprefix(blob, IVHD_DEV_SPECIAL |
                                  (uint64_t)IOGUARD_IOAPIC_ID << 32 |
                                  (uint64_t)IOGUARD_IOAPIC_DEVID << 40 |
                                  (uint64_t)IVHD_SPECIAL_IOAPIC << 56, 8);
    }
    return blob;
}

static void ivhd_header(GArray *table, IoguardIommuState *s, uint8_t type,
                        uint16_t length)
{
    PCIDevice *pdev = PCI_DEVICE(&s->pci);

    build_append_int_noprefix(table, type, 1);
    /* flags: IotlbSup (bit 4) as the capability says; Linux reads that */
    build_append_int_noprefix(table, X86_IOMMU_DEVICE(s)->dt_supported ?
                              1u << 4 : 0, 1);
    build_append_int_noprefix(table, length, 2);
    build_append_int_noprefix(table, PCI_BUILD_BDF(0, pdev->devfn), 2);
    build_append_int_noprefix(table, s->pci.cap_offset, 2);
    build_append_int_noprefix(table, IOGUARD_MMIO_BASE, 8);
    build_append_int_noprefix(table, 0, 2);            /* PCI segment */
    build_append_int_noprefix(table, 0, 2);            /* IOMMU info */
}

void ioguard_build_ivrs(IoguardIommuState *s, GArray *table_data,
                        BIOSLinker *linker, const char *oem_id,
                        const char *oem_table_id)
{
    AcpiTable table = { .sig = "IVRS", .rev = 2, .oem_id = oem_id,
                        .oem_table_id = oem_table_id };
    GArray *entries = ivrs_device_entries(s);
    uint64_t efr = ioguard_iommu_efr(s->engine);
    uint32_t features_10h;

    acpi_table_begin(&table, table_data);
    /* IVinfo: EFRSup, 48-bit physical and 64-bit virtual addresses */
    build_append_int_noprefix(table_data, 1 | 48 << 8 | 64 << 15, 4);
    build_append_int_noprefix(table_data, 0, 8);       /* reserved */

    /* IVHD 10h: features in its own layout (GASup bit 6, IASup bit 5) */
    features_10h = (efr & FEATURE_X2APIC ? 1u << 0 : 0) |
                   (efr & FEATURE_IA ? 1u << 5 : 0) |
                   (efr & FEATURE_GA ? 1u << 6 : 0) |
                   (uint32_t)((efr >> FEATURE_HATS_SHIFT) & 3) << 30;
    ivhd_header(table_data, s, 0x10, 24 + entries->len);
    build_append_int_noprefix(table_data, features_10h, 4);
    g_array_append_vals(table_data, entries->data, entries->len);

    /* IVHD 11h: attributes 0 (HATDis clear), the EFR image, EFR2 = 0 */
    ivhd_header(table_data, s, 0x11, 40 + entries->len);
    build_append_int_noprefix(table_data, 0, 4);
    build_append_int_noprefix(table_data, efr, 8);
    build_append_int_noprefix(table_data, 0, 8);
    g_array_append_vals(table_data, entries->data, entries->len);

    g_array_free(entries, true);
    acpi_table_end(linker, &table);
}
