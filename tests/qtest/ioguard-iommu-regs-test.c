/*
 * qtests for ioguard-iommu as a guest first finds it: its registers and
 * extended features, its PCI function and capability, and table base
 * registers pointed at hostile addresses.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "standard-headers/linux/pci_regs.h"
#include "ioguard-iommu-fixture.h"

static void test_registers(void)
{
    Fixture f;
    uint64_t efr;

    fixture_init(&f);
    efr = reg_read(&f, MMIO_EXT_FEATURES);
    g_assert_true(efr & FEATURE_IA);
    g_assert_true(efr & FEATURE_PREFETCH);      /* PREFETCH_IOMMU_PAGES */
    g_assert_cmphex(reg_read(&f, MMIO_EXT_FEATURES2), ==, 0);
    /* Linux writes base registers as two 32-bit halves, low first. */
    qtest_writel(f.qts, IOGUARD_MMIO_BASE + MMIO_EVT_BUF_OFFSET, 0x00600000);
    qtest_writel(f.qts, IOGUARD_MMIO_BASE + MMIO_EVT_BUF_OFFSET + 4,
                 0x08000000);
    g_assert_cmphex(reg_read(&f, MMIO_EVT_BUF_OFFSET), ==,
                    0x0800000000600000ULL);
    g_assert_cmphex(qtest_readb(f.qts, IOGUARD_MMIO_BASE + MMIO_CONTROL_OFFSET),
                    ==, 1 << CONTROL_IOMMU_EN | 1 << CONTROL_EVT_LOG_EN);
    completion_wait(&f);
    fixture_free(&f);
}

static void test_pci_function(void)
{
    Fixture f;
    QPCIDevice *iommu;
    uint8_t cap;
    uint32_t header;

    fixture_init(&f);
    iommu = qpci_device_find(f.pcibus, QPCI_DEVFN(1, 0));
    g_assert(iommu);
    g_assert_cmphex(qpci_config_readw(iommu, PCI_VENDOR_ID), ==,
                    IOGUARD_PCI_VENDOR_ID);
    g_assert_cmphex(qpci_config_readw(iommu, PCI_CLASS_DEVICE), ==,
                    IOGUARD_PCI_CLASS_IOMMU);
    cap = qpci_find_capability(iommu, IOGUARD_CAP_ID, 0);
    g_assert_cmpint(cap, !=, 0);
    header = qpci_config_readl(iommu, cap);
    g_assert_true(header & 1u << IOMMU_CAP_EFR);
    g_assert_false(header & 1u << IOMMU_CAP_NPCACHE);
    g_assert_false(header & 1u << IOMMU_CAP_IOTLB);
    g_assert_cmpint(qpci_find_capability(iommu, PCI_CAP_ID_MSI, 0), !=, 0);
    g_free(iommu);
    fixture_free(&f);
}

static void test_hostile_table_addresses(void)
{
    Fixture f;
    Event ev[4];

    fixture_init(&f);
    /* A command buffer on top of the IOMMU's own registers. */
    reg_write(&f, MMIO_CMD_BUF_OFFSET, IOGUARD_MMIO_BASE | (8ULL << 56));
    qtest_writel(f.qts, IOGUARD_MMIO_BASE + MMIO_CMD_TAIL_OFFSET, 0x40);
    g_assert_cmpint(read_events(&f, ev, 4), ==, 1);
    g_assert_cmpuint(ev[0].dw[1] >> 28, ==, EVENT_TYPE_CMD_HARD_ERR);
    g_assert_cmphex(((uint64_t)ev[0].dw[3] << 32) | ev[0].dw[2], ==,
                    IOGUARD_MMIO_BASE);

    /* A device table in the MMIO hole: a DEV_TAB_HARDWARE_ERROR. */
    reg_write(&f, MMIO_DEV_TABLE_OFFSET, 0xfe000000 | 0x1ff);
    edu_dma(&f, 0x1000, 8, true);
    g_assert_cmpint(read_events(&f, ev, 4), ==, 1);
    g_assert_cmpuint(ev[0].dw[1] >> 28, ==, EVENT_TYPE_DEV_TAB_ERR);

    /* QEMU still answers. */
    g_assert_true(reg_read(&f, MMIO_STATUS_OFFSET) & MMIO_STATUS_EVT_RUN_MASK);
    fixture_free(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/ioguard-iommu/registers", test_registers);
    qtest_add_func("/ioguard-iommu/pci-function", test_pci_function);
    qtest_add_func("/ioguard-iommu/hostile/table-addresses",
                   test_hostile_table_addresses);
    return g_test_run();
}
