/*
 * qtests for ioguard-iommu: program the IOMMU through its registers and
 * tables in guest memory, then make QEMU's edu device DMA through it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "ioguard-migration.h"
#include "libqos/pci-pc.h"
#include "qemu/bswap.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "standard-headers/linux/pci_regs.h"
#include "ioguard-iommu-driver.h"

#define EDU_DEVFN       QPCI_DEVFN(4, 0)
#define EDU_DEVID       EDU_DEVFN            /* bus 0 */
#define EDU_DMA_BUF     0x40000              /* edu's internal buffer */
#define EDU_DMA_TO_RAM  0x2
#define EDU_DMA_RUN     0x1

typedef struct Fixture {
    QTestState *qts;
    QPCIBus *pcibus;
    QPCIDevice *edu;
    QPCIBar edu_bar;
    IoguardIommu iommu;     /* the IOMMU's tables and queues */
} Fixture;

static uint64_t reg_read(Fixture *f, uint64_t off)
{
    return iommu_reg_read(&f->iommu, off);
}

static void reg_write(Fixture *f, uint64_t off, uint64_t v)
{
    iommu_reg_write(&f->iommu, off, v);
}

/* iommu_props: more properties of ioguard-iommu, starting with ','. */
static void fixture_init_with(Fixture *f, const char *iommu_props)
{
    const char *fw = g_getenv("IOGUARD_FIRMWARE");

    memset(f, 0, sizeof(*f));
    f->qts = qtest_initf("%s%s -M q35 -m 256M -nodefaults "
                         "-device ioguard-iommu,id=iommu0%s "
                         "-device edu,addr=0x4,id=edu0", fw ? "-L " : "",
                         fw ? fw : "", iommu_props);
    f->pcibus = qpci_new_pc(f->qts, NULL);
    f->edu = qpci_device_find(f->pcibus, EDU_DEVFN);
    g_assert(f->edu);
    qpci_device_enable(f->edu);
    f->edu_bar = qpci_iomap(f->edu, 0, NULL);
    iommu_enable(&f->iommu, f->qts);
}

static void fixture_init(Fixture *f)
{
    fixture_init_with(f, "");
}

static void fixture_free(Fixture *f)
{
    g_free(f->edu);
    qpci_free_pc(f->pcibus);
    qtest_quit(f->qts);
}

static void queue_command(Fixture *f, uint32_t dw0, uint32_t dw1,
                          uint32_t dw2, uint32_t dw3)
{
    iommu_queue_command(&f->iommu, dw0, dw1, dw2, dw3);
}

static void completion_wait(Fixture *f)
{
    iommu_completion_wait(&f->iommu);
}

static void set_dte(Fixture *f, uint16_t devid, uint64_t q0, uint64_t q1)
{
    iommu_set_dte(&f->iommu, devid, q0, q1);
}

/* edu translated through the (empty) page table */
static void build_tables(Fixture *f)
{
    iommu_build_tables(&f->iommu, EDU_DEVID);
}

/*
 * edu's interrupts through a 512-entry table of 32-bit entries at irt, as
 * Linux sets them up (IntCtl remapped, plus pass bits): entry 5 remapped to
 * vector 0x31 on APIC 1.
 */
static void attach_interrupt_table(Fixture *f, uint64_t irt, uint64_t pass)
{
    qtest_memset(f->qts, irt, 0, 2048);
    qtest_writel(f->qts, irt + 5 * 4, IRTE_REMAP_EN | 0x31u << 16 | 1u << 8);
    qtest_writeq(f->qts, DEV_TABLE + EDU_DEVID * 32 + 16,
                 DTE_IRQ_IV | 9ULL << DTE_IRQ_TABLE_LEN_SHIFT | irt |
                 2ULL << DTE_IRQ_INTCTL_SHIFT | pass);
    queue_command(f, EDU_DEVID, CMD_INV_DEV_ENTRY << 28, 0, 0);
    completion_wait(f);
}

static void map_page(Fixture *f, uint64_t iova, uint64_t gpa, bool write)
{
    iommu_map_page(&f->iommu, iova, gpa, write);
}

/* edu: copy len bytes between its buffer and a DMA address. */
static void edu_dma(Fixture *f, uint64_t dma_addr, uint32_t len, bool to_ram)
{
    uint64_t src = to_ram ? EDU_DMA_BUF : dma_addr;
    uint64_t dst = to_ram ? dma_addr : EDU_DMA_BUF;

    qpci_io_writeq(f->edu, f->edu_bar, 0x80, src);
    qpci_io_writeq(f->edu, f->edu_bar, 0x88, dst);
    qpci_io_writeq(f->edu, f->edu_bar, 0x90, len);
    qpci_io_writeq(f->edu, f->edu_bar, 0x98,
                   EDU_DMA_RUN | (to_ram ? EDU_DMA_TO_RAM : 0));
    qtest_clock_step(f->qts, 200 * 1000 * 1000);   /* edu's 100 ms timer */
}

static int read_events(Fixture *f, Event *out, int max)
{
    return iommu_read_events(&f->iommu, out, max);
}

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

/* cmd (query-ioguard-stats or -faults): the answer of the one IOMMU. */
static QDict *query_iommu(Fixture *f, const char *cmd, bool reset)
{
    QDict *resp = qtest_qmp(f->qts, "{'execute': %s, "
                            "'arguments': {'reset': %i}}", cmd, reset);
    QList *list = qdict_get_qlist(resp, "return");
    QDict *iommu;

    g_assert(list);
    g_assert_cmpint(qlist_size(list), ==, 1);
    iommu = qobject_to(QDict, qlist_peek(list));
    qobject_ref(iommu);
    qobject_unref(resp);
    return iommu;
}

static QDict *query_stats(Fixture *f, bool reset)
{
    return query_iommu(f, "query-ioguard-stats", reset);
}

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

static QDict *find_requester(QDict *iommu, const char *bdf)
{
    QListEntry *e;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(iommu, "requesters"), e) {
        QDict *r = qobject_to(QDict, qlist_entry_obj(e));

        if (!strcmp(qdict_get_str(r, "requester"), bdf)) {
            return r;
        }
    }
    return NULL;
}

static void test_qmp_stats(void)
{
    Fixture f;
    QDict *iommu, *edu;
    g_autofree char *hmp = NULL;

    fixture_init(&f);
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

static QDict *query_faults(Fixture *f, bool reset)
{
    return query_iommu(f, "query-ioguard-faults", reset);
}

/* The n-th record (from 0) of a query-ioguard-faults answer. */
static QDict *fault_at(QDict *iommu, int n)
{
    QList *faults = qdict_get_qlist(iommu, "faults");
    QListEntry *e;

    QLIST_FOREACH_ENTRY(faults, e) {
        if (n-- == 0) {
            return qobject_to(QDict, qlist_entry_obj(e));
        }
    }
    return NULL;
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

/* ---- STREAMING ---- */

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

static void assert_qmp_error(Fixture *f, QDict *resp, const char *desc)
{
    QDict *err = qdict_get_qdict(resp, "error");

    g_assert(err);
    g_assert_cmpstr(qdict_get_str(err, "desc"), ==, desc);
    qobject_unref(resp);
    (void)f;
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

/* ---- fault rules (docs/ioguard-faults.rst) ---- */

/* Adds a rule to iommu0; returns its id. */
static int64_t fault_add(Fixture *f, const char *rule)
{
    QDict *resp = qtest_qmp(f->qts, "{'execute': 'ioguard-fault-add', "
                            "'arguments': {'device': 'iommu0', 'rule': %s}}",
                            rule);
    QDict *ret = qdict_get_qdict(resp, "return");
    int64_t id;

    g_assert(ret);
    g_assert_cmpstr(qdict_get_str(ret, "rule"), ==, rule);
    id = qdict_get_int(ret, "id");
    qobject_unref(resp);
    return id;
}

static void fault_remove(Fixture *f, int64_t id)
{
    qobject_unref(qtest_qmp_assert_success_ref(
        f->qts, "{'execute': 'ioguard-fault-remove', "
        "'arguments': {'device': 'iommu0', 'id': %" PRId64 "}}", id));
}

/* The faults fired on iommu0 (a reference the caller drops). */
static QDict *fault_rules(Fixture *f)
{
    QDict *resp = qtest_qmp(f->qts, "{'execute': 'query-ioguard-fault-rules', "
                            "'arguments': {'device': 'iommu0'}}");
    QDict *info = qobject_to(QDict,
                             qlist_peek(qdict_get_qlist(resp, "return")));

    qobject_ref(info);
    qobject_unref(resp);
    return info;
}

static uint32_t event_type(const Event *ev)
{
    return ev->dw[1] >> 28;
}

/*
 * site=translate: a fault is the IO_PAGE_FAULT of a refused DMA (nothing
 * read, the event logged, the record says "injected"); corrupt silently
 * sends the DMA to the neighbouring page.
 */
static void test_fault_translate(void)
{
    Fixture f;
    Event ev[4];
    uint8_t data[64], got[64], other[64];
    QDict *info, *fired, *iommu;

    fixture_init(&f);
    build_tables(&f);
    map_page(&f, 0x10000, 0x2000000, false);
    memset(data, 0xa5, sizeof(data));
    memset(other, 0x5a, sizeof(other));
    qtest_memwrite(f.qts, 0x2000000, data, sizeof(data));
    qtest_memwrite(f.qts, 0x2001000, other, sizeof(other));

    fault_add(&f, "site=translate,requester=00:04.0,range=0x10000-0x10fff,"
              "access=read,when=once,action=fault");
    edu_dma(&f, 0x10000, 64, false);            /* refused */
    g_assert_cmpint(read_events(&f, ev, 4), ==, 1);
    g_assert_cmpuint(event_type(&ev[0]), ==, EVENT_TYPE_IO_FAULT);
    g_assert_cmphex(ev[0].dw[0] & 0xffff, ==, EDU_DEVID);
    g_assert_cmphex(ev[0].dw[1] & 0xffff, ==, DOMAIN);
    g_assert_cmphex(ev[0].dw[2], ==, 0x10000);
    g_assert_false((ev[0].dw[1] >> 16) & EVENT_FLAG_RW);

    info = fault_rules(&f);
    fired = qobject_to(QDict, qlist_peek(qdict_get_qlist(info, "fired")));
    g_assert_cmpint(qdict_get_int(fired, "seq"), ==, 1);
    g_assert_cmpint(qdict_get_int(fired, "rule"), ==, 1);
    g_assert_cmpstr(qdict_get_str(fired, "site"), ==, "translate");
    g_assert_cmpstr(qdict_get_str(fired, "action"), ==, "fault");
    g_assert_cmpstr(qdict_get_str(fired, "requester"), ==, "00:04.0");
    g_assert_cmphex(qdict_get_int(fired, "address"), ==, 0x10000);
    g_assert_cmpstr(qdict_get_str(fired, "access"), ==, "read");
    qobject_unref(info);
    iommu = query_faults(&f, false);
    g_assert_cmpstr(qdict_get_str(fault_at(iommu, 0), "reason"), ==,
                    "injected");
    qobject_unref(iommu);

    /* The rule is spent: the same DMA now reads the data. */
    edu_dma(&f, 0x10000, 64, false);
    map_page(&f, 0x11000, 0x2800000, true);
    edu_dma(&f, 0x11000, 64, true);
    qtest_memread(f.qts, 0x2800000, got, sizeof(got));
    g_assert_cmpmem(got, sizeof(got), data, sizeof(data));

    /* corrupt: the read comes from the page next to the mapped one. */
    fault_add(&f, "site=translate,range=0x10000-0x10fff,when=once,"
              "action=corrupt");
    edu_dma(&f, 0x10000, 64, false);
    edu_dma(&f, 0x11000, 64, true);
    qtest_memread(f.qts, 0x2800000, got, sizeof(got));
    g_assert_cmpmem(got, sizeof(got), other, sizeof(other));
    g_assert_cmpint(read_events(&f, ev, 4), ==, 0);
    fixture_free(&f);
}

/* site=page-walk and site=dte-fetch: the hardware-error events. */
static void test_fault_tables(void)
{
    Fixture f;
    Event ev[4];

    fixture_init(&f);
    build_tables(&f);
    map_page(&f, 0x10000, 0x2000000, true);
    fault_add(&f, "site=page-walk,when=once,action=fault");
    edu_dma(&f, 0x10000, 64, true);
    g_assert_cmpint(read_events(&f, ev, 4), ==, 1);
    g_assert_cmpuint(event_type(&ev[0]), ==, EVENT_TYPE_PAGE_TAB_ERR);
    g_assert_cmphex(ev[0].dw[1] & 0xffff, ==, DOMAIN);
    g_assert_cmphex(ev[0].dw[2], ==, PT_ROOT);

    fault_add(&f, "site=dte-fetch,requester=00:04.0,when=once,action=fault");
    edu_dma(&f, 0x10000, 64, true);
    g_assert_cmpint(read_events(&f, ev, 4), ==, 1);
    g_assert_cmpuint(event_type(&ev[0]), ==, EVENT_TYPE_DEV_TAB_ERR);
    g_assert_cmphex(ev[0].dw[0] & 0xffff, ==, EDU_DEVID);
    g_assert_cmphex(ev[0].dw[2], ==, DEV_TABLE + EDU_DEVID * 32);
    edu_dma(&f, 0x10000, 64, true);             /* both spent */
    g_assert_cmpint(read_events(&f, ev, 4), ==, 0);
    fixture_free(&f);
}

/*
 * site=command (stuck buffer, illegal command) and site=completion-wait
 * (dropped, delayed): what a driver waiting on its semaphore sees.
 */
static void test_fault_commands(void)
{
    Fixture f;
    Event ev[4];
    int64_t id;

    fixture_init(&f);
    id = fault_add(&f, "site=command,opcode=completion-wait,action=stuck");
    f.iommu.sem++;
    queue_command(&f, SEMAPHORE | CMD_COMPL_WAIT_STORE_MASK,
                  CMD_COMPL_WAIT << 28, f.iommu.sem, 0);
    g_assert_cmphex(qtest_readq(f.qts, SEMAPHORE), !=, f.iommu.sem);
    g_assert_cmphex(reg_read(&f, MMIO_CMD_HEAD_OFFSET), ==, 0);
    fault_remove(&f, id);                       /* the buffer moves on */
    g_assert_cmphex(qtest_readq(f.qts, SEMAPHORE), ==, f.iommu.sem);

    fault_add(&f, "site=completion-wait,when=once,action=drop");
    f.iommu.sem++;
    queue_command(&f, SEMAPHORE | CMD_COMPL_WAIT_STORE_MASK,
                  CMD_COMPL_WAIT << 28, f.iommu.sem, 0);
    g_assert_cmphex(qtest_readq(f.qts, SEMAPHORE), ==, f.iommu.sem - 1);
    completion_wait(&f);

    fault_add(&f, "site=completion-wait,when=once,action=delay:10ms");
    f.iommu.sem++;
    queue_command(&f, SEMAPHORE | CMD_COMPL_WAIT_STORE_MASK,
                  CMD_COMPL_WAIT << 28, f.iommu.sem, 0);
    g_assert_cmphex(qtest_readq(f.qts, SEMAPHORE), ==, f.iommu.sem - 1);
    qtest_clock_step(f.qts, 9 * 1000 * 1000);
    g_assert_cmphex(qtest_readq(f.qts, SEMAPHORE), ==, f.iommu.sem - 1);
    qtest_clock_step(f.qts, 1000 * 1000);
    g_assert_cmphex(qtest_readq(f.qts, SEMAPHORE), ==, f.iommu.sem);

    fault_add(&f, "site=command,opcode=invalidate-devtab-entry,when=once,"
              "action=fault");
    queue_command(&f, EDU_DEVID, CMD_INV_DEV_ENTRY << 28, 0, 0);
    g_assert_cmpint(read_events(&f, ev, 4), ==, 1);
    g_assert_cmpuint(event_type(&ev[0]), ==, EVENT_TYPE_ILL_CMD);
    g_assert_cmphex(ev[0].dw[2], ==, CMD_BUF + f.iommu.cmd_tail - 16);
    g_assert_false(reg_read(&f, MMIO_STATUS_OFFSET) &
                   MMIO_STATUS_CMDBUF_RUN_MASK);
    fixture_free(&f);
}

/* site=event-log: a dropped event, and an overflow that stops the log. */
static void test_fault_event_log(void)
{
    Fixture f;
    Event ev[4];
    QDict *iommu;

    fixture_init(&f);
    build_tables(&f);
    fault_add(&f, "site=event-log,when=once,action=drop");
    edu_dma(&f, 0x55000, 64, true);
    g_assert_cmpint(read_events(&f, ev, 4), ==, 0);
    iommu = query_faults(&f, false);
    g_assert_cmpstr(qdict_get_str(fault_at(iommu, 0), "delivery"), ==,
                    "injected");
    qobject_unref(iommu);

    fault_add(&f, "site=event-log,when=once,action=overflow");
    edu_dma(&f, 0x56000, 64, true);
    g_assert_true(reg_read(&f, MMIO_STATUS_OFFSET) &
                  MMIO_STATUS_EVT_OVERFLOW_MASK);
    g_assert_false(reg_read(&f, MMIO_STATUS_OFFSET) &
                   MMIO_STATUS_EVT_RUN_MASK);
    edu_dma(&f, 0x57000, 64, true);             /* the log has stopped */
    g_assert_cmpint(read_events(&f, ev, 4), ==, 0);
    fixture_free(&f);
}

/* edu's MSIs remapped so far, as query-ioguard-stats counts them. */
static int64_t edu_interrupts_remapped(Fixture *f)
{
    QDict *iommu = query_stats(f, false);
    QDict *edu = find_requester(iommu, "00:04.0");
    int64_t n = edu ? qdict_get_int(edu, "interrupts-remapped") : 0;

    qobject_unref(iommu);
    return n;
}

/* edu raises its MSI (through the IOMMU's interrupt remapping). */
static void edu_interrupt(Fixture *f)
{
    qpci_io_writel(f->edu, f->edu_bar, 0x64, 1);    /* acknowledge */
    qpci_io_writel(f->edu, f->edu_bar, 0x60, 1);    /* raise */
}

/* site=interrupt: the message is lost: not remapped, not delivered. */
static void test_fault_interrupt(void)
{
    Fixture f;
    const uint64_t irt = 0x1400000;
    uint8_t msi;
    QDict *info, *fired;

    fixture_init(&f);
    build_tables(&f);
    attach_interrupt_table(&f, irt, 0);
    /* edu's MSI (64-bit capable) names IRTE 5, as Linux's would. */
    msi = qpci_find_capability(f.edu, PCI_CAP_ID_MSI, 0);
    g_assert_cmpint(msi, !=, 0);
    qpci_config_writel(f.edu, msi + PCI_MSI_ADDRESS_LO, 0xfee00000);
    qpci_config_writel(f.edu, msi + PCI_MSI_ADDRESS_HI, 0);
    qpci_config_writew(f.edu, msi + PCI_MSI_DATA_64, 5);
    qpci_config_writew(f.edu, msi + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE |
                       PCI_MSI_FLAGS_64BIT);

    edu_interrupt(&f);
    g_assert_cmpint(edu_interrupts_remapped(&f), ==, 1);
    fault_add(&f, "site=interrupt,requester=00:04.0,when=once,action=drop");
    edu_interrupt(&f);
    g_assert_cmpint(edu_interrupts_remapped(&f), ==, 1);
    info = fault_rules(&f);
    fired = qobject_to(QDict, qlist_peek(qdict_get_qlist(info, "fired")));
    g_assert_cmpstr(qdict_get_str(fired, "site"), ==, "interrupt");
    g_assert_cmpstr(qdict_get_str(fired, "requester"), ==, "00:04.0");
    g_assert_cmphex(qdict_get_int(fired, "address"), ==, 0xfee00000);
    qobject_unref(info);
    g_assert_cmpint(read_events(&f, (Event[4]){}, 4), ==, 0);  /* silent */
    edu_interrupt(&f);
    g_assert_cmpint(edu_interrupts_remapped(&f), ==, 2);
    fixture_free(&f);
}

/* What QMP refuses, with what it says. */
static void test_fault_qmp_errors(void)
{
    Fixture f;

    fixture_init(&f);
    assert_qmp_error(&f, qtest_qmp(f.qts, "{'execute': 'ioguard-fault-add', "
                     "'arguments': {'device': 'iommu0', "
                     "'rule': 'site=translate,when=twice,action=fault'}}"),
                     "rule 'site=translate,when=twice,action=fault': when "
                     "'twice' is none of always, once, nth:N, every:N, "
                     "prob:P (0 < P <= 1), after:TIME (e.g. 250ms)");
    assert_qmp_error(&f, qtest_qmp(f.qts, "{'execute': 'ioguard-fault-add', "
                     "'arguments': {'device': 'iommu0', "
                     "'rule': 'site=nic-link,action=link-flap'}}"),
                     "rule 'site=nic-link,action=link-flap': site=nic-link "
                     "is not on this device (it has translate, page-walk, "
                     "dte-fetch, command, completion-wait, event-log, "
                     "interrupt)");
    assert_qmp_error(&f, qtest_qmp(f.qts, "{'execute': 'ioguard-fault-add', "
                     "'arguments': {'device': 'edu0', "
                     "'rule': 'site=translate,action=fault'}}"),
                     "'edu0' is not an ioguard device with fault rules "
                     "(give an id, a QOM path, ioguard-iommu or "
                     "ioguard-nic)");
    assert_qmp_error(&f, qtest_qmp(f.qts, "{'execute': "
                     "'ioguard-fault-remove', 'arguments': "
                     "{'device': 'ioguard-iommu', 'id': 3}}"),
                     "ioguard-iommu has no fault rule 3");
    fixture_free(&f);
}

/* A rules file at start-up: the rules and their seed are there. */
static void test_fault_rules_file(void)
{
    Fixture f;
    g_autofree char *path = NULL;
    g_autofree char *props = NULL;
    int fd = g_file_open_tmp("ioguard-faults-XXXXXX", &path, NULL);
    const char *text = "# a comment\n\n"
                       "site=translate,requester=00:04.0,when=prob:0.5,"
                       "action=fault\n"
                       "  site=command,opcode=invalidate-iommu-all,"
                       "action=stuck  \n";
    QDict *info;
    QList *rules;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, text, strlen(text)), ==, strlen(text));
    close(fd);
    props = g_strdup_printf(",fault-rules=%s,fault-seed=77", path);
    fixture_init_with(&f, props);
    info = fault_rules(&f);
    g_assert_cmpint(qdict_get_int(info, "seed"), ==, 77);
    rules = qdict_get_qlist(info, "rules");
    g_assert_cmpint(qlist_size(rules), ==, 2);
    g_assert_cmpstr(qdict_get_str(qobject_to(QDict, qlist_peek(rules)),
                                  "rule"), ==,
                    "site=translate,requester=00:04.0,when=prob:0.5,"
                    "action=fault");
    qobject_unref(info);
    fixture_free(&f);
    unlink(path);
}

/* ---- snapshots and migration ---- */

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
    qtest_add_func("/ioguard-iommu/registers", test_registers);
    qtest_add_func("/ioguard-iommu/pci-function", test_pci_function);
    qtest_add_func("/ioguard-iommu/dma/translated-round-trip",
                   test_translated_dma_round_trip);
    qtest_add_func("/ioguard-iommu/dma/unmapped-write-blocked",
                   test_unmapped_write_is_blocked_and_logged);
    qtest_add_func("/ioguard-iommu/dma/invalidation-exact",
                   test_invalidation_is_exact);
    qtest_add_func("/ioguard-iommu/dma/blocked-device", test_blocked_device);
    qtest_add_func("/ioguard-iommu/dma/passthrough-device",
                   test_passthrough_device);
    qtest_add_func("/ioguard-iommu/hostile/table-addresses",
                   test_hostile_table_addresses);
    qtest_add_func("/ioguard-iommu/qmp/stats", test_qmp_stats);
    qtest_add_func("/ioguard-iommu/qmp/stats-off", test_qmp_stats_off);
    qtest_add_func("/ioguard-iommu/qmp/faults", test_qmp_faults);
    qtest_add_func("/ioguard-iommu/qmp/verifier", test_qmp_verifier);
    qtest_add_func("/ioguard-iommu/qmp/mappings", test_qmp_mappings);
    qtest_add_func("/ioguard-iommu/qmp/device", test_qmp_device);
    qtest_add_func("/ioguard-iommu/streaming/guest-opt-in",
                   test_streaming_guest_opt_in);
    qtest_add_func("/ioguard-iommu/qmp/streaming", test_qmp_streaming);
    qtest_add_func("/ioguard-iommu/streaming/latency-model",
                   test_streaming_latency_model);
    qtest_add_func("/ioguard-iommu/faults/translate", test_fault_translate);
    qtest_add_func("/ioguard-iommu/faults/tables", test_fault_tables);
    qtest_add_func("/ioguard-iommu/faults/commands", test_fault_commands);
    qtest_add_func("/ioguard-iommu/faults/event-log", test_fault_event_log);
    qtest_add_func("/ioguard-iommu/faults/interrupt", test_fault_interrupt);
    qtest_add_func("/ioguard-iommu/faults/qmp-errors", test_fault_qmp_errors);
    qtest_add_func("/ioguard-iommu/faults/rules-file", test_fault_rules_file);
    qtest_add_func("/ioguard-iommu/migration", test_migration);
    return g_test_run();
}
