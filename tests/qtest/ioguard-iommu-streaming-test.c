/*
 * qtests for ioguard-iommu's STREAMING mappings: the guest's opt-in (PTE
 * bit and control register) and PREFETCH_IOMMU_PAGES, the latency model,
 * and the host's rules through QMP.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "ioguard-iommu-fixture.h"

#define STREAM_IOVA     0x10000
#define STREAM_GPA      0x2000000
#define STREAM_PAGES    16

static void map_stream(Fixture *f, bool streaming_bit)
{
    for (int i = 0; i < STREAM_PAGES; i++) {
        uint64_t iova = STREAM_IOVA + i * 4096;

        map_page(f, iova, STREAM_GPA + i * 4096, false);
        if (streaming_bit) {
            uint64_t pte = PT_L1 + ((iova >> 12) & 0x1ff) * 8;

            qtest_writeq(f->qts, pte, qtest_readq(f->qts, pte) |
                         IOGUARD_PTE_STREAMING);
        }
    }
}

/* edu reads the stream's pages one after the other, one page per DMA. */
static void read_stream(Fixture *f)
{
    for (int i = 0; i < STREAM_PAGES; i++) {
        edu_dma(f, STREAM_IOVA + i * 4096, 4096, false);
    }
}

static void invalidate_domain(Fixture *f)
{
    queue_command(f, 0, CMD_INV_IOMMU_PAGES << 28 | DOMAIN,
                  (uint32_t)CMD_INV_IOMMU_ALL_PAGES_ADDRESS |
                  CMD_INV_IOMMU_PAGES_SIZE_MASK | CMD_INV_IOMMU_PAGES_PDE_MASK,
                  CMD_INV_IOMMU_ALL_PAGES_ADDRESS >> 32);
    completion_wait(f);
}

/* The edu's statistics, from a query that resets them: unref *iommu. */
static QDict *edu_stats(Fixture *f, QDict **iommu)
{
    QDict *edu;

    *iommu = query_stats(f, true);
    edu = find_requester(*iommu, "00:04.0");
    g_assert(edu);
    return edu;
}

/* The edu's counters and its prefetch counters, read and reset. */
static void edu_counts(Fixture *f, int64_t *misses, int64_t *issued,
                       int64_t *used)
{
    QDict *iommu;
    QDict *edu = edu_stats(f, &iommu);
    QDict *prefetch = qdict_get_qdict(edu, "prefetch");

    *misses = qdict_get_int(edu, "iotlb-misses");
    *issued = qdict_get_int(prefetch, "issued");
    *used = qdict_get_int(prefetch, "used");
    qobject_unref(iommu);
}

static bool guest_opt_in(Fixture *f)
{
    QDict *resp = qtest_qmp(f->qts, "{'execute': 'query-ioguard-streaming'}");
    bool on = qdict_get_bool(qdict_get_qdict(resp, "return"), "guest-opt-in");

    qobject_unref(resp);
    return on;
}

static void test_streaming_guest_opt_in(void)
{
    Fixture f;
    int64_t misses, issued, used;

    fixture_init(&f);
    /* What a guest reads to find ioguard beyond AMD-Vi. */
    g_assert_cmphex(reg_read(&f, IOGUARD_MMIO_ID), ==, IOGUARD_ID_VALUE);
    g_assert_cmphex(reg_read(&f, IOGUARD_MMIO_FEATURES), ==,
                    IOGUARD_FEATURE_STREAMING);
    g_assert_cmphex(reg_read(&f, IOGUARD_MMIO_CONTROL), ==, 0);
    build_tables(&f);
    map_stream(&f, true);

    /* The PTE bit alone: plain AMD behaviour, a walk per page. */
    read_stream(&f);
    edu_counts(&f, &misses, &issued, &used);
    g_assert_cmpint(misses, ==, STREAM_PAGES);
    g_assert_cmpint(issued, ==, 0);
    g_assert_false(guest_opt_in(&f));

    /* With the control bit, one walk, then prefetched translations. */
    reg_write(&f, IOGUARD_MMIO_CONTROL, IOGUARD_CONTROL_STREAMING_EN);
    g_assert_cmphex(reg_read(&f, IOGUARD_MMIO_CONTROL), ==,
                    IOGUARD_CONTROL_STREAMING_EN);
    g_assert_true(guest_opt_in(&f));
    invalidate_domain(&f);
    read_stream(&f);
    edu_counts(&f, &misses, &issued, &used);
    g_assert_cmpint(misses, ==, 2);     /* a step confirms the stream */
    g_assert_cmpint(used, ==, STREAM_PAGES - 2);
    g_assert_cmpint(issued, ==, STREAM_PAGES - 2);

    /* Cleared again: the bit stops counting at once. */
    reg_write(&f, IOGUARD_MMIO_CONTROL, 0);
    invalidate_domain(&f);
    read_stream(&f);
    edu_counts(&f, &misses, &issued, &used);
    g_assert_cmpint(misses, ==, STREAM_PAGES);
    g_assert_cmpint(issued, ==, 0);

    /* PREFETCH_IOMMU_PAGES: 8 pages, then the DMA finds them cached. */
    invalidate_domain(&f);
    queue_command(&f, EDU_DEVID | 8u << CMD_PREFETCH_PFCOUNT_SHIFT,
                  CMD_PREFETCH_IOMMU_PAGES << 28, STREAM_IOVA, 0);
    completion_wait(&f);
    read_stream(&f);
    edu_counts(&f, &misses, &issued, &used);
    g_assert_cmpint(issued, ==, 8);
    g_assert_cmpint(used, ==, 8);
    g_assert_cmpint(misses, ==, STREAM_PAGES - 8);
    g_assert_cmpint(read_events(&f, (Event[4]){}, 4), ==, 0);
    fixture_free(&f);
}

/* The edu's modelled DMA time (latency-model=on), read and reset. */
static void edu_model(Fixture *f, int64_t *reads, int64_t *pipelined,
                      int64_t *read_ns)
{
    QDict *iommu;
    QDict *model = qdict_get_qdict(edu_stats(f, &iommu), "model");

    g_assert(model);
    *reads = qdict_get_int(model, "reads");
    *pipelined = qdict_get_int(model, "pipelined-reads");
    *read_ns = qdict_get_int(model, "read-ns");
    qobject_unref(iommu);
}

/*
 * The latency model as QMP reports it: CONSISTENT reads each pay a round
 * trip and their walk; in a STREAMING mapping (a host rule added at run
 * time) the reads after the first continue a stream and are pipelined.
 */
static void test_streaming_latency_model(void)
{
    Fixture f;
    int64_t reads, pipelined, consistent_ns, streaming_ns;
    QDict *resp;

    fixture_init_with(&f, ",latency-model=on,round-trip-ns=1000,"
                      "walk-read-ns=100,prefetch-depth=8");
    build_tables(&f);
    map_stream(&f, false);

    read_stream(&f);
    edu_model(&f, &reads, &pipelined, &consistent_ns);
    g_assert_cmpint(reads, ==, STREAM_PAGES);
    g_assert_cmpint(pipelined, ==, 0);
    /* a round trip each, and at least one walk read each */
    g_assert_cmpint(consistent_ns, >=, STREAM_PAGES * (1000 + 100));

    resp = qtest_qmp(f.qts, "{'execute': 'ioguard-streaming-add', "
                     "'arguments': {'requester': '00:04.0'}}");
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    invalidate_domain(&f);
    read_stream(&f);
    edu_model(&f, &reads, &pipelined, &streaming_ns);
    g_assert_cmpint(reads, ==, STREAM_PAGES);
    g_assert_cmpint(pipelined, ==, STREAM_PAGES - 1);
    /* 15 round trips overlapped 8 deep, and only two pages walked */
    g_assert_cmpint(streaming_ns, <, consistent_ns / 4);
    fixture_free(&f);
}

static void test_qmp_streaming(void)
{
    Fixture f;
    int64_t misses, issued, used;
    QDict *resp, *info, *rule;

    fixture_init_with(&f, ",streaming=00:04.0@0x10000-0x17fff");
    build_tables(&f);
    map_stream(&f, false);
    resp = qtest_qmp(f.qts, "{'execute': 'query-ioguard-streaming'}");
    info = qdict_get_qdict(resp, "return");
    g_assert_cmpint(qdict_get_int(info, "prefetch-depth"), ==, 32);
    g_assert_cmpint(qlist_size(qdict_get_qlist(info, "rules")), ==, 1);
    rule = qobject_to(QDict, qlist_peek(qdict_get_qlist(info, "rules")));
    g_assert_cmpstr(qdict_get_str(rule, "requester"), ==, "00:04.0");
    g_assert_cmphex(qdict_get_int(rule, "first"), ==, 0x10000);
    g_assert_cmphex(qdict_get_int(rule, "last"), ==, 0x17fff);
    qobject_unref(resp);

    /* The rule covers the first 8 pages: prefetched up to its end. */
    read_stream(&f);
    edu_counts(&f, &misses, &issued, &used);
    g_assert_cmpint(issued, ==, 6);
    g_assert_cmpint(used, ==, 6);
    g_assert_cmpint(misses, ==, STREAM_PAGES - 6);

    /* Removed at run time: plain AMD behaviour again. */
    qobject_unref(qtest_qmp_assert_success_ref(
        f.qts, "{'execute': 'ioguard-streaming-remove', 'arguments': "
        "{'requester': '00:04.0', 'first': 65536, 'last': 98303}}"));
    invalidate_domain(&f);
    read_stream(&f);
    edu_counts(&f, &misses, &issued, &used);
    g_assert_cmpint(issued, ==, 0);
    g_assert_cmpint(misses, ==, STREAM_PAGES);

    /* Added for the whole device. */
    qobject_unref(qtest_qmp_assert_success_ref(
        f.qts, "{'execute': 'ioguard-streaming-add', 'arguments': "
        "{'requester': '00:04.0'}}"));
    invalidate_domain(&f);
    read_stream(&f);
    edu_counts(&f, &misses, &issued, &used);
    g_assert_cmpint(misses, ==, 2);

    assert_qmp_error(&f, qtest_qmp(f.qts, "{'execute': "
                     "'ioguard-streaming-add', 'arguments': "
                     "{'requester': '00:10.0'}}"),
                     "no PCI device has requester ID 00:10.0");
    assert_qmp_error(&f, qtest_qmp(f.qts, "{'execute': "
                     "'ioguard-streaming-add', 'arguments': "
                     "{'requester': '00:04.0', 'first': 8192, 'last': 4096}}"),
                     "IOVA range 0x2000-0x1000 ends before it starts");
    assert_qmp_error(&f, qtest_qmp(f.qts, "{'execute': "
                     "'ioguard-streaming-remove', 'arguments': "
                     "{'requester': '00:04.0', 'first': 4096}}"),
                     "there is no STREAMING rule for 00:04.0 from 0x1000 "
                     "to 0xffffffffffffffff");
    fixture_free(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/ioguard-iommu/streaming/guest-opt-in",
                   test_streaming_guest_opt_in);
    qtest_add_func("/ioguard-iommu/qmp/streaming", test_qmp_streaming);
    qtest_add_func("/ioguard-iommu/streaming/latency-model",
                   test_streaming_latency_model);
    return g_test_run();
}
