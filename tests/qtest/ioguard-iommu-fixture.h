/*
 * The fixture the ioguard-iommu qtests share: q35 with ioguard-iommu and
 * QEMU's edu device at 00:04.0 doing DMA through it, the IOMMU driven as
 * ioguard-iommu-driver.h drives it, and the QMP queries that more than one
 * of the ioguard-iommu-*-test.c files reads.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef IOGUARD_IOMMU_FIXTURE_H
#define IOGUARD_IOMMU_FIXTURE_H

#include "libqtest.h"
#include "libqos/pci-pc.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
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

static inline uint64_t reg_read(Fixture *f, uint64_t off)
{
    return iommu_reg_read(&f->iommu, off);
}

static inline void reg_write(Fixture *f, uint64_t off, uint64_t v)
{
    iommu_reg_write(&f->iommu, off, v);
}

/* iommu_props: more properties of ioguard-iommu, starting with ','. */
static inline void fixture_init_with(Fixture *f, const char *iommu_props)
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

static inline void fixture_init(Fixture *f)
{
    fixture_init_with(f, "");
}

static inline void fixture_free(Fixture *f)
{
    g_free(f->edu);
    qpci_free_pc(f->pcibus);
    qtest_quit(f->qts);
}

static inline void queue_command(Fixture *f, uint32_t dw0, uint32_t dw1,
                                 uint32_t dw2, uint32_t dw3)
{
    iommu_queue_command(&f->iommu, dw0, dw1, dw2, dw3);
}

static inline void completion_wait(Fixture *f)
{
    iommu_completion_wait(&f->iommu);
}

static inline void set_dte(Fixture *f, uint16_t devid, uint64_t q0,
                           uint64_t q1)
{
    iommu_set_dte(&f->iommu, devid, q0, q1);
}

/* edu translated through the (empty) page table */
static inline void build_tables(Fixture *f)
{
    iommu_build_tables(&f->iommu, EDU_DEVID);
}

/*
 * edu's interrupts through a 512-entry table of 32-bit entries at irt, as
 * Linux sets them up (IntCtl remapped, plus pass bits): entry 5 remapped to
 * vector 0x31 on APIC 1.
 */
static inline void attach_interrupt_table(Fixture *f, uint64_t irt,
                                          uint64_t pass)
{
    qtest_memset(f->qts, irt, 0, 2048);
    qtest_writel(f->qts, irt + 5 * 4, IRTE_REMAP_EN | 0x31u << 16 | 1u << 8);
    qtest_writeq(f->qts, DEV_TABLE + EDU_DEVID * 32 + 16,
                 DTE_IRQ_IV | 9ULL << DTE_IRQ_TABLE_LEN_SHIFT | irt |
                 2ULL << DTE_IRQ_INTCTL_SHIFT | pass);
    queue_command(f, EDU_DEVID, CMD_INV_DEV_ENTRY << 28, 0, 0);
    completion_wait(f);
}

static inline void map_page(Fixture *f, uint64_t iova, uint64_t gpa,
                            bool write)
{
    iommu_map_page(&f->iommu, iova, gpa, write);
}

/* edu: copy len bytes between its buffer and a DMA address. */
static inline void edu_dma(Fixture *f, uint64_t dma_addr, uint32_t len,
                           bool to_ram)
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

static inline int read_events(Fixture *f, Event *out, int max)
{
    return iommu_read_events(&f->iommu, out, max);
}

/* ---- QMP ---- */

/* cmd (query-ioguard-stats or -faults): the answer of the one IOMMU. */
static inline QDict *query_iommu(Fixture *f, const char *cmd, bool reset)
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

static inline QDict *query_stats(Fixture *f, bool reset)
{
    return query_iommu(f, "query-ioguard-stats", reset);
}

static inline QDict *find_requester(QDict *iommu, const char *bdf)
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

static inline QDict *query_faults(Fixture *f, bool reset)
{
    return query_iommu(f, "query-ioguard-faults", reset);
}

/* The n-th record (from 0) of a query-ioguard-faults answer. */
static inline QDict *fault_at(QDict *iommu, int n)
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

static inline void assert_qmp_error(Fixture *f, QDict *resp,
                                    const char *desc)
{
    QDict *err = qdict_get_qdict(resp, "error");

    g_assert(err);
    g_assert_cmpstr(qdict_get_str(err, "desc"), ==, desc);
    qobject_unref(resp);
    (void)f;
}

/* ---- fault rules (docs/ioguard-faults.rst) ---- */

/* Adds a rule to iommu0; returns its id. */
static inline int64_t fault_add(Fixture *f, const char *rule)
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

/* The faults fired on iommu0 (a reference the caller drops). */
static inline QDict *fault_rules(Fixture *f)
{
    QDict *resp = qtest_qmp(f->qts, "{'execute': 'query-ioguard-fault-rules', "
                            "'arguments': {'device': 'iommu0'}}");
    QDict *info = qobject_to(QDict,
                             qlist_peek(qdict_get_qlist(resp, "return")));

    qobject_ref(info);
    qobject_unref(resp);
    return info;
}

#endif
