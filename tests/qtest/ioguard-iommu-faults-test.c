/*
 * qtests for ioguard-iommu's fault rules (docs/ioguard-faults.rst): each
 * site (translate, page-walk, dte-fetch, command, completion-wait,
 * event-log, interrupt) as the guest sees it, what QMP refuses, and a
 * rules file at start-up.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "standard-headers/linux/pci_regs.h"
#include "ioguard-iommu-fixture.h"

static void fault_remove(Fixture *f, int64_t id)
{
    qobject_unref(qtest_qmp_assert_success_ref(
        f->qts, "{'execute': 'ioguard-fault-remove', "
        "'arguments': {'device': 'iommu0', 'id': %" PRId64 "}}", id));
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
                     "interrupt, notifier, device-iotlb, page-request, "
                     "page-response)");
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

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/ioguard-iommu/faults/translate", test_fault_translate);
    qtest_add_func("/ioguard-iommu/faults/tables", test_fault_tables);
    qtest_add_func("/ioguard-iommu/faults/commands", test_fault_commands);
    qtest_add_func("/ioguard-iommu/faults/event-log", test_fault_event_log);
    qtest_add_func("/ioguard-iommu/faults/interrupt", test_fault_interrupt);
    qtest_add_func("/ioguard-iommu/faults/qmp-errors", test_fault_qmp_errors);
    qtest_add_func("/ioguard-iommu/faults/rules-file", test_fault_rules_file);
    return g_test_run();
}
