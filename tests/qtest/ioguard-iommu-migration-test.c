/*
 * qtest for ioguard-iommu in snapshots and migration: its state saved to
 * a file and loaded into a new QEMU.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "ioguard-migration.h"
#include "ioguard-iommu-fixture.h"

/*
 * The IOMMU migrates (to a file, then into a new QEMU): the registers read
 * back the same, DMA translates through the tables that came with RAM,
 * the event log goes on where it was, and a fault rule half-way to firing
 * fires on the same match it would have.
 */
static void test_migration(void)
{
    Fixture f, g;
    Event ev[4];
    g_autofree char *dir = g_dir_make_tmp("ioguard-migrate-XXXXXX", NULL);
    g_autofree char *file = g_strdup_printf("%s/state", dir);
    g_autofree char *uri = g_strdup_printf("file:%s", file);
    g_autofree char *props = g_strdup_printf(",fault-seed=9 -incoming file:%s",
                                             file);
    static const uint64_t regs[] = {
        MMIO_DEV_TABLE_OFFSET, MMIO_CMD_BUF_OFFSET, MMIO_EVT_BUF_OFFSET,
        MMIO_CONTROL_OFFSET, MMIO_CMD_HEAD_OFFSET, MMIO_CMD_TAIL_OFFSET,
        MMIO_EVT_HEAD_OFFSET, MMIO_EVT_TAIL_OFFSET, MMIO_STATUS_OFFSET,
    };
    uint8_t data[64], got[64];
    QDict *info;

    fixture_init_with(&f, ",fault-seed=9");
    build_tables(&f);
    map_page(&f, 0x10000, 0x2000000, true);
    memset(data, 0x3c, sizeof(data));
    qtest_memwrite(f.qts, 0x2000000, data, sizeof(data));
    edu_dma(&f, 0x55000, 64, true);             /* an event, logged */
    fault_add(&f, "site=translate,range=0x10000-0x10fff,when=nth:2,"
              "action=fault");
    edu_dma(&f, 0x10000, 64, false);            /* match 1: no fault */
    qtest_qmp_assert_success(f.qts, "{'execute': 'migrate', "
                             "'arguments': {'uri': %s}}", uri);
    ioguard_wait_migration(f.qts);

    memset(&g, 0, sizeof(g));
    g.qts = qtest_initf("%s%s -M q35 -m 256M -nodefaults "
                        "-device ioguard-iommu,id=iommu0%s "
                        "-device edu,addr=0x4,id=edu0",
                        g_getenv("IOGUARD_FIRMWARE") ? "-L " : "",
                        g_getenv("IOGUARD_FIRMWARE") ?: "", props);
    ioguard_wait_migration(g.qts);
    g.pcibus = qpci_new_pc(g.qts, NULL);
    g.edu = qpci_device_find(g.pcibus, EDU_DEVFN);
    qpci_device_enable(g.edu);      /* edu has no migration state of its own */
    g.edu_bar = qpci_iomap(g.edu, 0, NULL);
    g.iommu = f.iommu;              /* the driver's state, migrated */
    g.iommu.qts = g.qts;
    for (int i = 0; i < G_N_ELEMENTS(regs); i++) {
        g_assert_cmphex(reg_read(&g, regs[i]), ==, reg_read(&f, regs[i]));
    }
    info = fault_rules(&g);
    g_assert_cmpint(qdict_get_int(info, "seed"), ==, 9);
    qobject_unref(info);
    fixture_free(&f);

    edu_dma(&g, 0x10000, 64, false);            /* match 2: refused */
    g_assert_cmpint(read_events(&g, ev, 4), ==, 2);
    g_assert_cmphex(ev[0].dw[2], ==, 0x55000);  /* from before */
    g_assert_cmphex(ev[1].dw[2], ==, 0x10000);
    edu_dma(&g, 0x10000, 64, false);            /* and on */
    edu_dma(&g, 0x10040, 64, true);
    qtest_memread(g.qts, 0x2000040, got, sizeof(got));
    g_assert_cmpmem(got, sizeof(got), data, sizeof(data));
    completion_wait(&g);
    fixture_free(&g);
    unlink(file);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/ioguard-iommu/migration", test_migration);
    return g_test_run();
}
