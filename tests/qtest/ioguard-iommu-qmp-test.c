/*
 * qtests for what ioguard-iommu tells the monitor (QMP and HMP): its
 * statistics, its fault records and the DMA verifier, a requester's
 * mappings and its device table and interrupt remapping entries.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "ioguard-iommu-fixture.h"

/* The count of `name` in a list of IoguardCount, 0 if absent. */
static int64_t count_of(QDict *d, const char *list, const char *name)
{
    QListEntry *e;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(d, list), e) {
        QDict *c = qobject_to(QDict, qlist_entry_obj(e));

        if (!strcmp(qdict_get_str(c, "name"), name)) {
            return qdict_get_int(c, "count");
        }
    }
    return 0;
}

static void test_qmp_stats(void)
{
    Fixture f;
    QDict *iommu, *edu;
    g_autofree char *hmp = NULL;
    int64_t identity_off;

    fixture_init(&f);
    /* IOMMU off: every requester, edu among them, sees memory directly. */
    iommu = query_stats(&f, false);
    identity_off = qdict_get_int(iommu, "identity-requesters");
    g_assert_cmpint(identity_off, >=, 1);
    qobject_unref(iommu);
    build_tables(&f);
    map_page(&f, 0x10000, 0x2000000, true);
    edu_dma(&f, 0x10000, 64, false);            /* translated */
    edu_dma(&f, 0x10040, 64, true);             /* IOTLB hit */
    edu_dma(&f, 0x55000, 64, true);             /* never mapped */

    iommu = query_stats(&f, false);
    g_assert_cmpstr(qdict_get_str(iommu, "qom-path"), ==,
                    "/machine/peripheral/iommu0");
    g_assert_true(qdict_get_bool(iommu, "statistics"));
    edu = find_requester(iommu, "00:04.0");
    g_assert(edu);
    g_assert_cmpstr(qdict_get_str(edu, "qom-path"), ==,
                    "/machine/peripheral/edu0");
    g_assert_cmpint(qdict_get_int(edu, "translations"), >=, 3);
    g_assert_cmpint(qdict_get_int(edu, "iotlb-hits"), >=, 1);
    g_assert_cmpint(qdict_get_int(edu, "page-walks"), >=, 1);
    g_assert_cmpint(qdict_get_int(edu, "faults"), >=, 1);
    g_assert_cmpint(count_of(edu, "events", "io-page-fault"), ==, 1);
    g_assert_cmpint(qdict_get_int(iommu, "translations"), ==,
                     qdict_get_int(edu, "translations"));
    g_assert_cmpint(qdict_get_int(iommu, "events-logged"), ==, 1);
    g_assert_cmpint(count_of(iommu, "commands", "invalidate-devtab-entry"),
                     ==, 1);
    g_assert_cmpint(count_of(iommu, "commands", "completion-wait"), ==, 1);
    g_assert_cmpint(qdict_get_int(iommu, "invalidations"), ==, 1);
    /* Only edu's DTE translates; the others are V=0, still identity. */
    g_assert_cmpint(qdict_get_int(iommu, "identity-requesters"), ==,
                    identity_off - 1);

    hmp = qtest_hmp(f.qts, "info ioguard-stats");
    g_assert_nonnull(strstr(hmp, "00:04.0 /machine/peripheral/edu0"));
    g_assert_nonnull(strstr(hmp, "io-page-fault"));
    qobject_unref(iommu);

    /* reset: this answer still has the counts, the next one starts over. */
    iommu = query_stats(&f, true);
    g_assert_nonnull(find_requester(iommu, "00:04.0"));
    qobject_unref(iommu);
    iommu = query_stats(&f, false);
    g_assert_null(find_requester(iommu, "00:04.0"));
    g_assert_cmpint(qdict_get_int(iommu, "translations"), ==, 0);
    g_assert_cmpint(qdict_get_int(iommu, "events-logged"), ==, 0);
    qobject_unref(iommu);
    fixture_free(&f);
}

static void test_qmp_stats_off(void)
{
    Fixture f;
    QDict *iommu;

    fixture_init_with(&f, ",statistics=off");
    build_tables(&f);
    map_page(&f, 0x10000, 0x2000000, true);
    edu_dma(&f, 0x10000, 64, false);
    iommu = query_stats(&f, false);
    g_assert_false(qdict_get_bool(iommu, "statistics"));
    g_assert_null(find_requester(iommu, "00:04.0"));
    g_assert_cmpint(qdict_get_int(iommu, "translations"), ==, 0);
    /* Commands are the control plane: counted anyway. */
    g_assert_cmpint(count_of(iommu, "commands", "completion-wait"), ==, 1);
    qobject_unref(iommu);
    fixture_free(&f);
}

static void test_qmp_faults(void)
{
    Fixture f;
    QDict *iommu, *r;
    g_autofree char *hmp = NULL;

    fixture_init(&f);
    build_tables(&f);
    map_page(&f, 0x10000, 0x2000000, false);
    edu_dma(&f, 0x10000, 64, true);             /* write to a read-only page */
    edu_dma(&f, 0x55000, 64, false);            /* read of a page never mapped */

    iommu = query_faults(&f, false);
    g_assert_cmpint(qdict_get_int(iommu, "capacity"), ==, 256);
    g_assert_cmpint(qdict_get_int(iommu, "overwritten"), ==, 0);
    g_assert_false(qdict_get_bool(iommu, "verifier"));
    g_assert_cmpint(qlist_size(qdict_get_qlist(iommu, "faults")), ==, 2);
    r = fault_at(iommu, 0);
    g_assert_cmpint(qdict_get_int(r, "seq"), ==, 1);
    g_assert_cmpstr(qdict_get_str(r, "reason"), ==, "permission");
    g_assert_cmpstr(qdict_get_str(r, "event"), ==, "io-page-fault");
    g_assert_cmpstr(qdict_get_str(r, "requester"), ==, "00:04.0");
    g_assert_cmpstr(qdict_get_str(r, "qom-path"), ==,
                    "/machine/peripheral/edu0");
    g_assert_cmpint(qdict_get_int(r, "domain"), ==, DOMAIN);
    g_assert_cmphex(qdict_get_int(r, "iova"), ==, 0x10000);
    g_assert_cmpstr(qdict_get_str(r, "access"), ==, "write");
    g_assert_false(qdict_get_bool(r, "interrupt"));
    g_assert_cmpstr(qdict_get_str(r, "delivery"), ==, "logged");
    r = fault_at(iommu, 1);
    g_assert_cmpstr(qdict_get_str(r, "reason"), ==, "not-present");
    g_assert_cmphex(qdict_get_int(r, "iova"), ==, 0x55000);
    g_assert_cmpstr(qdict_get_str(r, "access"), ==, "read");
    g_assert_cmpint(qdict_get_int(r, "time-ns"), >,
                    qdict_get_int(fault_at(iommu, 0), "time-ns"));
    qobject_unref(iommu);

    hmp = qtest_hmp(f.qts, "info ioguard-faults");
    g_assert_nonnull(strstr(hmp, "#2 "));
    g_assert_nonnull(strstr(hmp, "not-present 00:04.0 read iova 0x55000 "
                            "domain 66 [io-page-fault: logged] "
                            "/machine/peripheral/edu0"));

    /* The guest turns its event log off: the fault is kept, as lost. */
    reg_write(&f, MMIO_CONTROL_OFFSET,
              1ULL << CONTROL_IOMMU_EN | 1ULL << CONTROL_CMDBUF_EN);
    edu_dma(&f, 0x56000, 64, true);
    iommu = query_faults(&f, true);
    r = fault_at(iommu, 2);
    g_assert_cmpint(qdict_get_int(r, "seq"), ==, 3);
    g_assert_cmpstr(qdict_get_str(r, "delivery"), ==, "log-disabled");
    qobject_unref(iommu);
    iommu = query_faults(&f, false);
    g_assert_cmpint(qlist_size(qdict_get_qlist(iommu, "faults")), ==, 0);
    qobject_unref(iommu);
    fixture_free(&f);
}

/*
 * The DMA verifier: the device writes through a translation the guest
 * removed from its tables without invalidating it (as lazy mode leaves
 * it). Hardware lets it through and so does ioguard; the verifier flags
 * it. After the invalidation (what strict mode does at once) the same DMA
 * faults.
 */
static void test_qmp_verifier(void)
{
    Fixture f;
    QDict *iommu, *r;
    Event ev[4];

    fixture_init_with(&f, ",verifier=on");
    build_tables(&f);
    map_page(&f, 0x10000, 0x2000000, true);
    qtest_memset(f.qts, 0x2000000, 0, 4096);
    edu_dma(&f, 0x10000, 64, false);            /* the IOTLB has it now */
    qtest_writeq(f.qts, PT_L1 + 0x10 * 8, 0);   /* unmapped, not invalidated */
    qtest_writeq(f.qts, EDU_DMA_BUF, 0);
    qtest_writeq(f.qts, 0x2000000, 0x5555);
    edu_dma(&f, 0x10000, 8, false);             /* use after unmap */
    g_assert_cmpint(read_events(&f, ev, 4), ==, 0);

    iommu = query_faults(&f, false);
    g_assert_true(qdict_get_bool(iommu, "verifier"));
    g_assert_cmpint(qlist_size(qdict_get_qlist(iommu, "faults")), ==, 1);
    r = fault_at(iommu, 0);
    g_assert_cmpstr(qdict_get_str(r, "reason"), ==, "use-after-unmap");
    g_assert_false(qdict_haskey(r, "event"));
    g_assert_cmpstr(qdict_get_str(r, "delivery"), ==, "not-reported");
    g_assert_cmpstr(qdict_get_str(r, "requester"), ==, "00:04.0");
    g_assert_cmphex(qdict_get_int(r, "iova"), ==, 0x10000);
    g_assert_cmpstr(qdict_get_str(r, "access"), ==, "read");
    g_assert_cmphex(qdict_get_int(r, "stale-target"), ==, 0x2000000);
    g_assert_false(qdict_haskey(r, "current-target"));
    qobject_unref(iommu);

    queue_command(&f, 0, CMD_INV_IOMMU_PAGES << 28 | DOMAIN, 0x10000, 0);
    completion_wait(&f);
    edu_dma(&f, 0x10000, 8, false);
    g_assert_cmpint(read_events(&f, ev, 4), ==, 1);
    iommu = query_faults(&f, false);
    r = fault_at(iommu, 1);
    g_assert_cmpstr(qdict_get_str(r, "reason"), ==, "not-present");
    g_assert_cmpstr(qdict_get_str(r, "delivery"), ==, "logged");
    qobject_unref(iommu);
    fixture_free(&f);
}

static QDict *query_mappings(Fixture *f, const char *requester)
{
    QDict *resp = qtest_qmp(f->qts, "{'execute': 'query-ioguard-mappings', "
                            "'arguments': {'requester': %s}}", requester);
    QDict *info = qdict_get_qdict(resp, "return");

    g_assert(info);
    qobject_ref(info);
    qobject_unref(resp);
    return info;
}

/* Expects the error QMP gives for cmd with the requester argument. */
static void assert_requester_error(Fixture *f, const char *cmd,
                                   const char *requester, const char *desc)
{
    QDict *resp = qtest_qmp(f->qts, "{'execute': %s, "
                            "'arguments': {'requester': %s}}", cmd,
                            requester);
    QDict *err = qdict_get_qdict(resp, "error");

    g_assert(err);
    g_assert_cmpstr(qdict_get_str(err, "desc"), ==, desc);
    qobject_unref(resp);
}

static void assert_range(QDict *info, int n, uint64_t iova, uint64_t last,
                         uint64_t target, bool write)
{
    QListEntry *e;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "ranges"), e) {
        if (n-- == 0) {
            QDict *r = qobject_to(QDict, qlist_entry_obj(e));

            g_assert_cmphex(qdict_get_int(r, "iova"), ==, iova);
            g_assert_cmphex(qdict_get_int(r, "last"), ==, last);
            g_assert_cmphex(qdict_get_int(r, "target"), ==, target);
            g_assert_true(qdict_get_bool(r, "read"));
            g_assert_cmpint(qdict_get_bool(r, "write"), ==, write);
            return;
        }
    }
    g_assert_not_reached();
}

static void test_qmp_mappings(void)
{
    Fixture f;
    QDict *info, *resp;
    g_autofree char *hmp = NULL;

    fixture_init(&f);
    info = query_mappings(&f, "00:04.0");       /* no DTE yet: V=0 */
    g_assert_cmpstr(qdict_get_str(info, "dma"), ==, "untranslated");
    qobject_unref(info);

    build_tables(&f);
    map_page(&f, 0x10000, 0x2000000, true);
    map_page(&f, 0x11000, 0x2001000, true);     /* contiguous: one range */
    map_page(&f, 0x12000, 0x2800000, false);
    info = query_mappings(&f, "00:04.0");
    g_assert_cmpstr(qdict_get_str(info, "dma"), ==, "translated");
    g_assert_cmpstr(qdict_get_str(info, "qom-path"), ==,
                    "/machine/peripheral/edu0");
    g_assert_cmpint(qlist_size(qdict_get_qlist(info, "ranges")), ==, 2);
    assert_range(info, 0, 0x10000, 0x11fff, 0x2000000, true);
    assert_range(info, 1, 0x12000, 0x12fff, 0x2800000, false);
    g_assert_false(qdict_get_bool(info, "truncated"));
    g_assert_cmpint(qdict_get_int(info, "tables-read"), ==, 3);
    qobject_unref(info);

    /* The IOTLB still holds 0x12000 once unmapped; the answer does not. */
    edu_dma(&f, 0x12000, 8, false);
    qtest_writeq(f.qts, PT_L1 + 0x12 * 8, 0);
    info = query_mappings(&f, "00:04.0");
    g_assert_cmpint(qlist_size(qdict_get_qlist(info, "ranges")), ==, 1);
    qobject_unref(info);

    /* start and max-ranges */
    resp = qtest_qmp(f.qts, "{'execute': 'query-ioguard-mappings', "
                     "'arguments': {'requester': '00:04.0', "
                     "'start': %u, 'max-ranges': 1}}", 0x11000);
    info = qdict_get_qdict(resp, "return");
    assert_range(info, 0, 0x11000, 0x11fff, 0x2001000, true);
    qobject_unref(resp);

    hmp = qtest_hmp(f.qts, "info ioguard-mappings 00:04.0");
    g_assert_nonnull(strstr(hmp, "00:04.0 /machine/peripheral/edu0: DMA "
                            "translated, 1 ranges from 3 page tables, 0 "
                            "malformed entries"));
    g_assert_nonnull(strstr(hmp, "0x0000000000010000-0x0000000000011fff -> "
                            "0x2000000 rw"));

    assert_requester_error(&f, "query-ioguard-mappings", "4.0",
                           "requester '4.0' is not bus:device.function "
                           "(hex, e.g. 00:03.0)");
    assert_requester_error(&f, "query-ioguard-mappings", "00:04.8",
                           "requester '00:04.8' is not bus:device.function "
                           "(hex, e.g. 00:03.0)");
    assert_requester_error(&f, "query-ioguard-mappings", "00:20.0",
                           "requester '00:20.0' is not bus:device.function "
                           "(hex, e.g. 00:03.0)");
    assert_requester_error(&f, "query-ioguard-mappings", "00:1f.5",
                           "no PCI device has requester ID 00:1f.5");
    resp = qtest_qmp(f.qts, "{'execute': 'query-ioguard-mappings', "
                     "'arguments': {'requester': '00:04.0', "
                     "'max-ranges': 0}}");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "error"), "desc"),
                    ==, "max-ranges 0 is not between 1 and 65536");
    qobject_unref(resp);
    resp = qtest_qmp(f.qts, "{'execute': 'query-ioguard-mappings', "
                     "'arguments': {'requester': '00:04.0', "
                     "'pasid': %u}}", 0x100000);
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "error"), "desc"),
                    ==, "pasid 1048576 is not a PASID (20 bits, at most "
                    "1048575)");
    qobject_unref(resp);
    resp = qtest_qmp(f.qts, "{'execute': 'query-ioguard-mappings', "
                     "'arguments': {'requester': '00:04.0', "
                     "'privileged': true}}");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "error"), "desc"),
                    ==, "privileged needs a pasid: requests without a PASID "
                    "are user requests");
    qobject_unref(resp);
    /* A PASID of a requester without guest tables: blocked, nothing. */
    resp = qtest_qmp(f.qts, "{'execute': 'query-ioguard-mappings', "
                     "'arguments': {'requester': '00:04.0', 'pasid': 1}}");
    info = qdict_get_qdict(resp, "return");
    g_assert_cmpstr(qdict_get_str(info, "dma"), ==, "blocked");
    g_assert_cmpint(qlist_size(qdict_get_qlist(info, "ranges")), ==, 0);
    qobject_unref(resp);
    fixture_free(&f);
}

static void test_qmp_device(void)
{
    Fixture f;
    QDict *resp, *info, *irte;
    QList *dte;
    g_autofree char *hmp = NULL;
    const uint64_t irt = 0x1400000;

    fixture_init(&f);
    build_tables(&f);
    attach_interrupt_table(&f, irt, DTE_IRQ_NMIPASS);

    resp = qtest_qmp(f.qts, "{'execute': 'query-ioguard-device', "
                     "'arguments': {'requester': '00:04.0'}}");
    info = qdict_get_qdict(resp, "return");
    g_assert(info);
    g_assert_true(qdict_get_bool(info, "iommu-enabled"));
    g_assert_cmphex(qdict_get_int(info, "dte-address"), ==,
                    DEV_TABLE + EDU_DEVID * 32);
    dte = qdict_get_qlist(info, "dte");
    g_assert_cmpint(qlist_size(dte), ==, 4);
    g_assert_cmpstr(qdict_get_str(info, "dma"), ==, "translated");
    g_assert_cmpint(qdict_get_int(info, "mode"), ==, 3);
    g_assert_cmphex(qdict_get_int(info, "page-table-root"), ==, PT_ROOT);
    g_assert_cmpint(qdict_get_int(info, "domain"), ==, DOMAIN);
    g_assert_true(qdict_get_bool(info, "read"));
    g_assert_true(qdict_get_bool(info, "write"));
    g_assert_false(qdict_get_bool(info, "illegal"));
    g_assert_true(qdict_get_bool(info, "interrupt-valid"));
    g_assert_cmphex(qdict_get_int(info, "interrupt-table-root"), ==, irt);
    g_assert_cmpint(qdict_get_int(info, "interrupt-table-entries"), ==, 512);
    g_assert_cmpstr(qdict_get_str(info, "interrupt-control"), ==, "remap");
    g_assert_cmpstr(qdict_get_str(info, "irte-format"), ==, "32-bit");
    g_assert_cmpint(qlist_size(qdict_get_qlist(info, "passed")), ==, 1);
    g_assert_cmpint(qlist_size(qdict_get_qlist(info, "irtes")), ==, 1);
    irte = qobject_to(QDict, qlist_peek(qdict_get_qlist(info, "irtes")));
    g_assert_cmpint(qdict_get_int(irte, "index"), ==, 5);
    g_assert_cmpint(qdict_get_int(irte, "vector"), ==, 0x31);
    g_assert_cmpint(qdict_get_int(irte, "destination"), ==, 1);
    g_assert_true(qdict_get_bool(irte, "remap-enabled"));
    /* The IOMMU's cached copy, if any, is the invalidated entry. */
    g_assert_false(qdict_get_bool(info, "cached-copy-stale"));
    qobject_unref(resp);

    /* A DMA caches the DTE; the guest then changes it without invalidating. */
    edu_dma(&f, 0x10000, 8, false);
    qtest_writeq(f.qts, DEV_TABLE + EDU_DEVID * 32 + 8, DOMAIN + 1);
    resp = qtest_qmp(f.qts, "{'execute': 'query-ioguard-device', "
                     "'arguments': {'requester': '00:04.0'}}");
    info = qdict_get_qdict(resp, "return");
    g_assert_true(qdict_get_bool(info, "cached-copy-stale"));
    g_assert_cmpint(qdict_get_int(info, "domain"), ==, DOMAIN + 1);
    qobject_unref(resp);

    hmp = qtest_hmp(f.qts, "info ioguard-device 00:04.0");
    g_assert_nonnull(strstr(hmp, "(IOMMU's cached copy is stale)"));
    g_assert_nonnull(strstr(hmp, "IntCtl remap nmi-pass"));
    g_assert_nonnull(strstr(hmp, "IRTE 5: remap vector 0x31 -> APIC 1"));
    g_free(hmp);
    hmp = qtest_hmp(f.qts, "info ioguard-device 00:1f.5");
    g_assert_nonnull(strstr(hmp, "no PCI device has requester ID 00:1f.5"));

    assert_requester_error(&f, "query-ioguard-device", "00-04.0",
                           "requester '00-04.0' is not bus:device.function "
                           "(hex, e.g. 00:03.0)");
    assert_requester_error(&f, "query-ioguard-device", "00:1f.5",
                           "no PCI device has requester ID 00:1f.5");
    fixture_free(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/ioguard-iommu/qmp/stats", test_qmp_stats);
    qtest_add_func("/ioguard-iommu/qmp/stats-off", test_qmp_stats_off);
    qtest_add_func("/ioguard-iommu/qmp/faults", test_qmp_faults);
    qtest_add_func("/ioguard-iommu/qmp/verifier", test_qmp_verifier);
    qtest_add_func("/ioguard-iommu/qmp/mappings", test_qmp_mappings);
    qtest_add_func("/ioguard-iommu/qmp/device", test_qmp_device);
    return g_test_run();
}
