/*
 * qtests for ioguard-iommu's DMA remapping: QEMU's edu device DMAs through
 * device table entries and page tables in guest memory (translated,
 * refused and logged, invalidated, blocked, passed through).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "ioguard-iommu-fixture.h"

static void test_translated_dma_round_trip(void)
{
    Fixture f;
    uint8_t pattern[256], back[256];

    fixture_init(&f);
    build_tables(&f);
    map_page(&f, 0x10000, 0x2000000, false);    /* source: read-only */
    map_page(&f, 0x11000, 0x2800000, true);     /* destination */
    for (int i = 0; i < sizeof(pattern); i++) {
        pattern[i] = i * 7 + 3;
    }
    qtest_memwrite(f.qts, 0x2000000 + 0x80, pattern, sizeof(pattern));
    qtest_memset(f.qts, 0x2800000, 0, 4096);

    edu_dma(&f, 0x10080, sizeof(pattern), false);   /* RAM -> edu */
    edu_dma(&f, 0x11100, sizeof(pattern), true);    /* edu -> RAM */
    qtest_memread(f.qts, 0x2800000 + 0x100, back, sizeof(back));
    g_assert_cmpmem(back, sizeof(back), pattern, sizeof(pattern));
    g_assert_cmpint(read_events(&f, (Event[4]){}, 4), ==, 0);
    fixture_free(&f);
}

static void test_unmapped_write_is_blocked_and_logged(void)
{
    Fixture f;
    Event ev[8];
    uint8_t zero[64] = { 0 }, back[64];
    int n;

    fixture_init(&f);
    build_tables(&f);
    map_page(&f, 0x10000, 0x2000000, false);
    qtest_memset(f.qts, 0x2000000, 0, 4096);

    /* A write to a read-only page and a write to a page never mapped. */
    edu_dma(&f, 0x10000, 64, true);
    edu_dma(&f, 0x55000, 64, true);
    qtest_memread(f.qts, 0x2000000, back, sizeof(back));
    g_assert_cmpmem(back, sizeof(back), zero, sizeof(zero));

    n = read_events(&f, ev, 8);
    g_assert_cmpint(n, ==, 2);
    for (int i = 0; i < n; i++) {
        g_assert_cmpuint(ev[i].dw[1] >> 28, ==, EVENT_TYPE_IO_FAULT);
        g_assert_cmphex(ev[i].dw[0] & 0xffff, ==, EDU_DEVID);
        g_assert_cmphex(ev[i].dw[1] & 0xffff, ==, DOMAIN);
        g_assert_true((ev[i].dw[1] >> 16) & EVENT_FLAG_RW);
        g_assert_false((ev[i].dw[1] >> 16) & EVENT_FLAG_I);
    }
    g_assert_cmphex(ev[0].dw[2], ==, 0x10000);
    g_assert_true((ev[0].dw[1] >> 16) & EVENT_FLAG_PR);
    g_assert_cmphex(ev[1].dw[2], ==, 0x55000);
    g_assert_false((ev[1].dw[1] >> 16) & EVENT_FLAG_PR);
    fixture_free(&f);
}

static void test_invalidation_is_exact(void)
{
    Fixture f;

    fixture_init(&f);
    build_tables(&f);
    map_page(&f, 0x20000, 0x3000000, true);
    qtest_memset(f.qts, 0x3000000, 0, 4096);
    qtest_memset(f.qts, 0x3100000, 0, 4096);
    qtest_writeq(f.qts, 0x2000000, 0x1122334455667788ULL);
    map_page(&f, 0x10000, 0x2000000, false);
    edu_dma(&f, 0x10000, 8, false);

    edu_dma(&f, 0x20000, 8, true);
    g_assert_cmphex(qtest_readq(f.qts, 0x3000000), ==, 0x1122334455667788ULL);

    /* Remap without invalidating: the cached translation still holds. */
    map_page(&f, 0x20000, 0x3100000, true);
    qtest_writeq(f.qts, 0x3000000, 0);
    edu_dma(&f, 0x20000, 8, true);
    g_assert_cmphex(qtest_readq(f.qts, 0x3000000), ==, 0x1122334455667788ULL);
    g_assert_cmphex(qtest_readq(f.qts, 0x3100000), ==, 0);

    /* INVALIDATE_IOMMU_PAGES + COMPLETION_WAIT: the new mapping only. */
    queue_command(&f, 0, CMD_INV_IOMMU_PAGES << 28 | DOMAIN,
                  0x20000 | CMD_INV_IOMMU_PAGES_PDE_MASK, 0);
    completion_wait(&f);
    qtest_writeq(f.qts, 0x3000000, 0);
    edu_dma(&f, 0x20000, 8, true);
    g_assert_cmphex(qtest_readq(f.qts, 0x3100000), ==, 0x1122334455667788ULL);
    g_assert_cmphex(qtest_readq(f.qts, 0x3000000), ==, 0);
    fixture_free(&f);
}

static void test_blocked_device(void)
{
    Fixture f;
    Event ev[4];

    fixture_init(&f);
    /* What Linux writes for a device it has not attached. */
    set_dte(&f, EDU_DEVID, DTE_FLAG_V | DTE_FLAG_TV, 0);
    qtest_writeq(f.qts, 0x2000000, 0);
    edu_dma(&f, 0x2000000, 8, true);
    g_assert_cmphex(qtest_readq(f.qts, 0x2000000), ==, 0);
    g_assert_cmpint(read_events(&f, ev, 4), ==, 1);
    g_assert_cmpuint(ev[0].dw[1] >> 28, ==, EVENT_TYPE_IO_FAULT);
    fixture_free(&f);
}

static void test_passthrough_device(void)
{
    Fixture f;

    fixture_init(&f);
    /* What Linux writes for an identity domain (iommu=pt). */
    set_dte(&f, EDU_DEVID, DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_IR |
            DTE_FLAG_IW, 7);
    qtest_writeq(f.qts, 0x2000000, 0xfeedfacecafef00dULL);
    edu_dma(&f, 0x2000000, 8, false);
    edu_dma(&f, 0x2400000, 8, true);
    g_assert_cmphex(qtest_readq(f.qts, 0x2400000), ==, 0xfeedfacecafef00dULL);

    /* Back to blocked: DMA stops at once after the invalidation. */
    set_dte(&f, EDU_DEVID, DTE_FLAG_V | DTE_FLAG_TV, 0);
    qtest_writeq(f.qts, 0x2800000, 0);
    edu_dma(&f, 0x2800000, 8, true);
    g_assert_cmphex(qtest_readq(f.qts, 0x2800000), ==, 0);
    fixture_free(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/ioguard-iommu/dma/translated-round-trip",
                   test_translated_dma_round_trip);
    qtest_add_func("/ioguard-iommu/dma/unmapped-write-blocked",
                   test_unmapped_write_is_blocked_and_logged);
    qtest_add_func("/ioguard-iommu/dma/invalidation-exact",
                   test_invalidation_is_exact);
    qtest_add_func("/ioguard-iommu/dma/blocked-device", test_blocked_device);
    qtest_add_func("/ioguard-iommu/dma/passthrough-device",
                   test_passthrough_device);
    return g_test_run();
}
