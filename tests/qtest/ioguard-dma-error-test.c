/*
 * qtests of DMA that ioguard-iommu refuses, as the disk controllers that
 * make it see it. QEMU's AHCI, IDE and NVMe controllers read and write
 * guest memory through the IOMMU, which this test programs as Linux would.
 * A data buffer the IOMMU refuses fails the command with the controller's
 * architected error (AHCI: PxIS.HBFS and the command aborted; IDE: the bus
 * master's Error bit and the command aborted; NVMe: Data Transfer Error),
 * nothing lands in memory or on the disk, the IOMMU logs
 * one IO_PAGE_FAULT, and the controller goes on working. An allowed DMA to
 * a guest-physical address that is not RAM keeps QEMU's behaviour.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "libqos/pci-pc.h"
#include "ioguard-iommu-driver.h"

#define SECTOR          512
#define DISK_SECTORS    2048                 /* 1 MiB */

/*
 * The controllers' memory: IOVA i (below 2 MiB) is guest-physical
 * DEV_MEM + i. Each test maps what its controller uses.
 */
#define DEV_MEM         0x2000000
#define REFUSED_WRITE   0x80000              /* mapped read-only */
#define REFUSED_READ    0x90000              /* never mapped */
#define CANARY          0xa5
#define NOT_RAM_GPA     0x20000000ULL        /* in q35's PCI hole */

/* A sector's bytes as the disk images hold them */
static uint8_t disk_byte(uint64_t lba, int i)
{
    return (uint8_t)(lba * 7 + i);
}

static char *make_disk(void)
{
    GError *err = NULL;
    char *path = NULL;
    int fd = g_file_open_tmp("ioguard-dma-error-XXXXXX", &path, &err);
    uint8_t sector[SECTOR];

    g_assert_no_error(err);
    for (uint64_t lba = 0; lba < DISK_SECTORS; lba++) {
        for (int i = 0; i < SECTOR; i++) {
            sector[i] = disk_byte(lba, i);
        }
        g_assert_cmpint(write(fd, sector, SECTOR), ==, SECTOR);
    }
    close(fd);
    return path;
}

typedef struct Machine {
    QTestState *qts;
    QPCIBus *pcibus;
    IoguardIommu iommu;
    char *disk;
} Machine;

/* q35 with ioguard-iommu and dev_args, whose drive is "disk0" */
static void machine_start(Machine *m, const char *dev_args)
{
    const char *fw = g_getenv("IOGUARD_FIRMWARE");

    m->disk = make_disk();
    m->qts = qtest_initf("%s%s -M q35 -m 256M -nodefaults "
                         "-device ioguard-iommu,id=iommu0 "
                         "-drive if=none,id=disk0,file=%s,format=raw %s",
                         fw ? "-L " : "", fw ? fw : "", m->disk, dev_args);
    m->pcibus = qpci_new_pc(m->qts, NULL);
    iommu_enable(&m->iommu, m->qts);
}

static void machine_stop(Machine *m)
{
    qpci_free_pc(m->pcibus);
    qtest_quit(m->qts);
    unlink(m->disk);
    g_free(m->disk);
}

/* Maps IOVAs [iova, iova + len) to DEV_MEM + iova, writable. */
static void map_dev_mem(Machine *m, uint64_t iova, uint64_t len)
{
    for (uint64_t a = iova; a < iova + len; a += 4096) {
        iommu_map_page(&m->iommu, a, DEV_MEM + a, true);
    }
}

/*
 * The two refused buffers: REFUSED_WRITE read-only over a page of
 * canaries, REFUSED_READ not mapped.
 */
static void map_refused_buffers(Machine *m)
{
    qtest_memset(m->qts, DEV_MEM + REFUSED_WRITE, CANARY, 4096);
    iommu_map_page(&m->iommu, REFUSED_WRITE, DEV_MEM + REFUSED_WRITE, false);
}

static void assert_sectors(Machine *m, uint64_t gpa, uint64_t lba, int n)
{
    g_autofree uint8_t *buf = g_malloc(n * SECTOR);

    qtest_memread(m->qts, gpa, buf, n * SECTOR);
    for (int s = 0; s < n; s++) {
        for (int i = 0; i < SECTOR; i++) {
            g_assert_cmphex(buf[s * SECTOR + i], ==, disk_byte(lba + s, i));
        }
    }
}

static void assert_canaries(Machine *m)
{
    uint8_t buf[4096];

    qtest_memread(m->qts, DEV_MEM + REFUSED_WRITE, buf, sizeof(buf));
    for (int i = 0; i < sizeof(buf); i++) {
        g_assert_cmphex(buf[i], ==, CANARY);
    }
}

/* Exactly one event: devid's IO_PAGE_FAULT at iova, write or read. */
static void assert_one_page_fault(Machine *m, uint16_t devid, uint64_t iova,
                                  bool write)
{
    Event ev[8];

    g_assert_cmpint(iommu_read_events(&m->iommu, ev, 8), ==, 1);
    g_assert_cmpuint(ev[0].dw[1] >> 28, ==, EVENT_TYPE_IO_FAULT);
    g_assert_cmphex(ev[0].dw[0] & 0xffff, ==, devid);
    g_assert_cmphex(ev[0].dw[2], ==, iova);
    g_assert_cmpint(!!((ev[0].dw[1] >> 16) & EVENT_FLAG_RW), ==, write);
}

static void assert_no_events(Machine *m)
{
    Event ev[8];

    g_assert_cmpint(iommu_read_events(&m->iommu, ev, 8), ==, 0);
}

/*
 * AHCI: q35's ich9-ahci at 00:1f.2, the disk on port 0. Its command list,
 * received FISes and command table at fixed IOVAs; one command at a time,
 * in slot 0, with one PRD entry.
 */
#define AHCI_DEVFN      QPCI_DEVFN(0x1f, 2)
#define AHCI_DEVID      AHCI_DEVFN
#define AHCI_CLB        0x1000
#define AHCI_FB         0x2000
#define AHCI_CTBA       0x3000
#define AHCI_BUF        0x10000

#define AHCI_GHC        0x04
#define AHCI_GHC_AE     (1u << 31)
#define PX(reg)         (0x100 + (reg))
#define PX_CLB          PX(0x00)
#define PX_FB           PX(0x08)
#define PX_IS           PX(0x10)
#define PX_CMD          PX(0x18)
#define PX_TFD          PX(0x20)
#define PX_SCTL         PX(0x2c)
#define PX_SERR         PX(0x30)
#define PX_SACT         PX(0x34)
#define PX_CI           PX(0x38)
#define PX_CMD_ST       (1u << 0)
#define PX_CMD_FRE      (1u << 4)
#define PX_IS_HBFS      (1u << 29)
#define PX_IS_TFES      (1u << 30)
#define PX_IS_ERRORS    0xfd800000u          /* PxIS's error bits */

#define ATA_READ_DMA_EXT        0x25
#define ATA_WRITE_DMA_EXT       0x35
#define ATA_READ_FPDMA_QUEUED   0x60
#define ATA_STAT_ERR            0x01

typedef struct Ahci {
    Machine m;
    QPCIDevice *dev;
    QPCIBar abar;
} Ahci;

static uint32_t ahci_read(Ahci *a, uint32_t off)
{
    return qpci_io_readl(a->dev, a->abar, off);
}

static void ahci_write(Ahci *a, uint32_t off, uint32_t v)
{
    qpci_io_writel(a->dev, a->abar, off, v);
}

/* Starts port 0's engines, as libahci's ahci_start_engine(). */
static void ahci_port_start(Ahci *a)
{
    ahci_write(a, PX_CLB, AHCI_CLB);
    ahci_write(a, PX_FB, AHCI_FB);
    ahci_write(a, PX_SERR, ~0u);
    ahci_write(a, PX_IS, ~0u);
    ahci_write(a, PX_CMD, PX_CMD_FRE);
    ahci_write(a, PX_CMD, PX_CMD_FRE | PX_CMD_ST);
}

/* After an error: stop, COMRESET and restart, as libahci's hard reset. */
static void ahci_port_reset(Ahci *a)
{
    ahci_write(a, PX_CMD, PX_CMD_FRE);
    ahci_write(a, PX_SCTL, 1);
    ahci_write(a, PX_SCTL, 0);
    ahci_port_start(a);
}

static void ahci_init(Ahci *a)
{
    machine_start(&a->m, "-device ide-hd,drive=disk0,bus=ide.0");
    a->dev = qpci_device_find(a->m.pcibus, AHCI_DEVFN);
    g_assert(a->dev);
    qpci_device_enable(a->dev);
    a->abar = qpci_iomap(a->dev, 5, NULL);
    iommu_build_tables(&a->m.iommu, AHCI_DEVID);
    map_dev_mem(&a->m, 0, AHCI_BUF + 8 * SECTOR);
    map_refused_buffers(&a->m);
    ahci_write(a, AHCI_GHC, AHCI_GHC_AE);
    ahci_port_start(a);
    assert_no_events(&a->m);
}

static void ahci_free(Ahci *a)
{
    g_free(a->dev);
    machine_stop(&a->m);
}

/*
 * Issues an ATA command on slot 0 with one PRD entry of count sectors at
 * iova; returns PxIS once the command is done or an error is raised.
 */
static uint32_t ahci_command(Ahci *a, uint8_t cmd, uint64_t lba, int count,
                             uint64_t iova)
{
    bool ncq = cmd == ATA_READ_FPDMA_QUEUED;
    bool write = cmd == ATA_WRITE_DMA_EXT;
    uint8_t fis[20] = {
        0x27, 0x80, cmd, ncq ? count : 0,
        lba, lba >> 8, lba >> 16, 0x40,
        lba >> 24, lba >> 32, lba >> 40, 0,
        ncq ? 0 : count, 0,
    };
    uint32_t header[4] = {
        cpu_to_le32(5 | (write ? 1 << 6 : 0) | 1 << 16),    /* CFL, W, PRDTL */
        0, cpu_to_le32(AHCI_CTBA), 0,
    };
    uint32_t prd[4] = {
        cpu_to_le32(iova), cpu_to_le32(iova >> 32), 0,
        cpu_to_le32(count * SECTOR - 1),
    };
    uint32_t is = 0;

    qtest_memset(a->m.qts, DEV_MEM + AHCI_CTBA, 0, 0x80);
    qtest_memwrite(a->m.qts, DEV_MEM + AHCI_CTBA, fis, sizeof(fis));
    qtest_memwrite(a->m.qts, DEV_MEM + AHCI_CTBA + 0x80, prd, sizeof(prd));
    qtest_memwrite(a->m.qts, DEV_MEM + AHCI_CLB, header, sizeof(header));
    if (ncq) {
        ahci_write(a, PX_SACT, 1);
    }
    ahci_write(a, PX_CI, 1);
    for (int i = 0; i < 5000; i++) {
        is = ahci_read(a, PX_IS);
        if ((is & PX_IS_ERRORS) ||
            !(ahci_read(a, ncq ? PX_SACT : PX_CI) & 1)) {
            return is;
        }
        g_usleep(1000);
    }
    g_assert_not_reached();
}

static void ahci_assert_ok(Ahci *a, uint32_t is)
{
    g_assert_cmphex(is & PX_IS_ERRORS, ==, 0);
    g_assert_cmphex(ahci_read(a, PX_TFD) & ATA_STAT_ERR, ==, 0);
    ahci_write(a, PX_IS, is);
}

/*
 * The architected error: a host bus fatal error, the command aborted and
 * not completed (its PxCI bit, or PxSACT's for NCQ, still set). Then the
 * reset the driver does.
 */
static void ahci_assert_host_bus_error(Ahci *a, uint32_t is, bool ncq)
{
    g_assert_cmphex(is & PX_IS_HBFS, ==, PX_IS_HBFS);
    g_assert_cmphex(ahci_read(a, PX_TFD) & ATA_STAT_ERR, ==, ATA_STAT_ERR);
    g_assert_cmphex(ahci_read(a, ncq ? PX_SACT : PX_CI) & 1, ==, 1);
    ahci_port_reset(a);
}

static void test_ahci(uint8_t read_cmd)
{
    Ahci a;
    uint32_t is;

    ahci_init(&a);

    /* Allowed: the sectors arrive. */
    is = ahci_command(&a, read_cmd, 8, 4, AHCI_BUF);
    ahci_assert_ok(&a, is);
    assert_sectors(&a.m, DEV_MEM + AHCI_BUF, 8, 4);
    assert_no_events(&a.m);

    /* Into a read-only page: refused, nothing written there. */
    is = ahci_command(&a, read_cmd, 16, 1, REFUSED_WRITE);
    ahci_assert_host_bus_error(&a, is, read_cmd == ATA_READ_FPDMA_QUEUED);
    assert_canaries(&a.m);
    assert_one_page_fault(&a.m, AHCI_DEVID, REFUSED_WRITE, true);

    /* The port, reset as Linux resets it, reads again. */
    is = ahci_command(&a, read_cmd, 24, 2, AHCI_BUF);
    ahci_assert_ok(&a, is);
    assert_sectors(&a.m, DEV_MEM + AHCI_BUF, 24, 2);
    assert_no_events(&a.m);
    ahci_free(&a);
}

static void test_ahci_read_dma_refused(void)
{
    test_ahci(ATA_READ_DMA_EXT);
}

static void test_ahci_read_fpdma_refused(void)
{
    test_ahci(ATA_READ_FPDMA_QUEUED);
}

/* A disk write from a page never mapped: the disk keeps its data. */
static void test_ahci_write_refused(void)
{
    Ahci a;
    uint32_t is;

    ahci_init(&a);
    is = ahci_command(&a, ATA_WRITE_DMA_EXT, 40, 1, REFUSED_READ);
    ahci_assert_host_bus_error(&a, is, false);
    assert_one_page_fault(&a.m, AHCI_DEVID, REFUSED_READ, false);

    is = ahci_command(&a, ATA_READ_DMA_EXT, 40, 1, AHCI_BUF);
    ahci_assert_ok(&a, is);
    assert_sectors(&a.m, DEV_MEM + AHCI_BUF, 40, 1);
    ahci_free(&a);
}

/*
 * The IOMMU allows the DMA but the address it translates to is not RAM:
 * QEMU's behaviour (a bounce buffer; what is written is dropped), no
 * error, no event.
 */
static void test_ahci_allowed_to_not_ram(void)
{
    Ahci a;
    uint32_t is;

    ahci_init(&a);
    iommu_map_page(&a.m.iommu, 0x70000, NOT_RAM_GPA, true);
    is = ahci_command(&a, ATA_READ_DMA_EXT, 8, 1, 0x70000);
    ahci_assert_ok(&a, is);
    assert_no_events(&a.m);
    ahci_free(&a);
}

/*
 * NVMe: a controller at 00:05.0 with namespace 1 on the disk. Its admin
 * queues and one I/O queue pair at fixed IOVAs, polled (no interrupts).
 */
#define NVME_DEVFN      QPCI_DEVFN(5, 0)
#define NVME_DEVID      NVME_DEVFN
#define NVME_ASQ        0x20000
#define NVME_ACQ        0x21000
#define NVME_IOSQ       0x22000
#define NVME_IOCQ       0x23000
#define NVME_BUF        0x30000
#define NVME_QSIZE      16

#define NVME_CC         0x14
#define NVME_CSTS       0x1c
#define NVME_AQA        0x24
#define NVME_ASQ_REG    0x28
#define NVME_ACQ_REG    0x30
#define NVME_SQ0TDBL    0x1000

#define NVME_ADM_CREATE_SQ      0x01
#define NVME_ADM_CREATE_CQ      0x05
#define NVME_ADM_IDENTIFY       0x06
#define NVME_CMD_WRITE          0x01
#define NVME_CMD_READ           0x02
#define NVME_SC_SUCCESS         0x0
#define NVME_SC_DATA_XFER_ERROR 0x4

typedef struct NvmeQueue {
    uint64_t sq, cq;        /* IOVAs */
    uint16_t qid, tail, head, cid;
    bool phase;
} NvmeQueue;

typedef struct Nvme {
    Machine m;
    QPCIDevice *dev;
    QPCIBar bar;
    NvmeQueue admin, io;
} Nvme;

/*
 * Submits a command on q and returns its status field (SC and SCT, no
 * phase) once it completes.
 */
static uint16_t nvme_submit(Nvme *n, NvmeQueue *q, uint8_t opcode,
                            uint32_t nsid, uint64_t prp1, uint32_t cdw10,
                            uint32_t cdw11, uint32_t cdw12)
{
    uint32_t cmd[16] = { 0 };
    uint32_t cqe[4];

    cmd[0] = cpu_to_le32(opcode | (uint32_t)++q->cid << 16);
    cmd[1] = cpu_to_le32(nsid);
    cmd[6] = cpu_to_le32(prp1);
    cmd[7] = cpu_to_le32(prp1 >> 32);
    cmd[10] = cpu_to_le32(cdw10);
    cmd[11] = cpu_to_le32(cdw11);
    cmd[12] = cpu_to_le32(cdw12);
    qtest_memwrite(n->m.qts, DEV_MEM + q->sq + q->tail * 64, cmd, 64);
    q->tail = (q->tail + 1) % NVME_QSIZE;
    qpci_io_writel(n->dev, n->bar, NVME_SQ0TDBL + q->qid * 8, q->tail);

    for (int i = 0; i < 5000; i++) {
        qtest_memread(n->m.qts, DEV_MEM + q->cq + q->head * 16, cqe, 16);
        if (((le32_to_cpu(cqe[3]) >> 16) & 1) == q->phase) {
            g_assert_cmphex(le32_to_cpu(cqe[3]) & 0xffff, ==, q->cid);
            q->head = (q->head + 1) % NVME_QSIZE;
            q->phase ^= q->head == 0;
            qpci_io_writel(n->dev, n->bar, NVME_SQ0TDBL + q->qid * 8 + 4,
                           q->head);
            return le32_to_cpu(cqe[3]) >> 17;
        }
        g_usleep(1000);
    }
    g_assert_not_reached();
}

static void nvme_init(Nvme *n)
{
    memset(n, 0, sizeof(*n));
    machine_start(&n->m, "-device nvme,drive=disk0,serial=ioguard,addr=0x5");
    n->dev = qpci_device_find(n->m.pcibus, NVME_DEVFN);
    g_assert(n->dev);
    qpci_device_enable(n->dev);
    n->bar = qpci_iomap(n->dev, 0, NULL);
    iommu_build_tables(&n->m.iommu, NVME_DEVID);
    map_dev_mem(&n->m, NVME_ASQ, NVME_BUF + 8 * SECTOR - NVME_ASQ);
    map_refused_buffers(&n->m);

    n->admin = (NvmeQueue) { .sq = NVME_ASQ, .cq = NVME_ACQ, .phase = 1 };
    n->io = (NvmeQueue) { .sq = NVME_IOSQ, .cq = NVME_IOCQ, .qid = 1,
                          .phase = 1 };
    qpci_io_writel(n->dev, n->bar, NVME_AQA,
                   (NVME_QSIZE - 1) << 16 | (NVME_QSIZE - 1));
    qpci_io_writeq(n->dev, n->bar, NVME_ASQ_REG, NVME_ASQ);
    qpci_io_writeq(n->dev, n->bar, NVME_ACQ_REG, NVME_ACQ);
    /* EN, 64-byte SQ entries, 16-byte CQ entries, 4 KiB pages */
    qpci_io_writel(n->dev, n->bar, NVME_CC, 1 | 6 << 16 | 4 << 20);
    for (int i = 0; !(qpci_io_readl(n->dev, n->bar, NVME_CSTS) & 1); i++) {
        g_assert_cmpint(i, <, 5000);
        g_usleep(1000);
    }
    g_assert_cmphex(nvme_submit(n, &n->admin, NVME_ADM_CREATE_CQ, 0,
                                NVME_IOCQ, (NVME_QSIZE - 1) << 16 | 1, 1, 0),
                    ==, NVME_SC_SUCCESS);
    g_assert_cmphex(nvme_submit(n, &n->admin, NVME_ADM_CREATE_SQ, 0,
                                NVME_IOSQ, (NVME_QSIZE - 1) << 16 | 1,
                                1 << 16 | 1, 0),
                    ==, NVME_SC_SUCCESS);
    assert_no_events(&n->m);
}

static void nvme_free(Nvme *n)
{
    g_free(n->dev);
    machine_stop(&n->m);
}

static uint16_t nvme_rw(Nvme *n, uint8_t opcode, uint64_t lba, int count,
                        uint64_t iova)
{
    return nvme_submit(n, &n->io, opcode, 1, iova, lba, lba >> 32,
                       count - 1);
}

static void test_nvme_read_refused(void)
{
    Nvme n;

    nvme_init(&n);
    g_assert_cmphex(nvme_rw(&n, NVME_CMD_READ, 8, 4, NVME_BUF), ==,
                    NVME_SC_SUCCESS);
    assert_sectors(&n.m, DEV_MEM + NVME_BUF, 8, 4);
    assert_no_events(&n.m);

    g_assert_cmphex(nvme_rw(&n, NVME_CMD_READ, 16, 1, REFUSED_WRITE), ==,
                    NVME_SC_DATA_XFER_ERROR);
    assert_canaries(&n.m);
    assert_one_page_fault(&n.m, NVME_DEVID, REFUSED_WRITE, true);

    g_assert_cmphex(nvme_rw(&n, NVME_CMD_READ, 24, 2, NVME_BUF), ==,
                    NVME_SC_SUCCESS);
    assert_sectors(&n.m, DEV_MEM + NVME_BUF, 24, 2);
    nvme_free(&n);
}

static void test_nvme_write_refused(void)
{
    Nvme n;

    nvme_init(&n);
    g_assert_cmphex(nvme_rw(&n, NVME_CMD_WRITE, 40, 1, REFUSED_READ), ==,
                    NVME_SC_DATA_XFER_ERROR);
    assert_one_page_fault(&n.m, NVME_DEVID, REFUSED_READ, false);
    g_assert_cmphex(nvme_rw(&n, NVME_CMD_READ, 40, 1, NVME_BUF), ==,
                    NVME_SC_SUCCESS);
    assert_sectors(&n.m, DEV_MEM + NVME_BUF, 40, 1);
    nvme_free(&n);
}

/* An admin command's data (Identify Controller) goes the same way. */
static void test_nvme_identify_refused(void)
{
    Nvme n;

    nvme_init(&n);
    g_assert_cmphex(nvme_submit(&n, &n.admin, NVME_ADM_IDENTIFY, 0,
                                REFUSED_WRITE, 1, 0, 0),
                    ==, NVME_SC_DATA_XFER_ERROR);
    assert_canaries(&n.m);
    assert_one_page_fault(&n.m, NVME_DEVID, REFUSED_WRITE, true);
    g_assert_cmphex(nvme_submit(&n, &n.admin, NVME_ADM_IDENTIFY, 0,
                                NVME_BUF, 1, 0, 0),
                    ==, NVME_SC_SUCCESS);
    nvme_free(&n);
}

/*
 * IDE through a PCI bus master: piix3-ide at 00:06.0 in legacy mode (ATA
 * registers at 0x1f0), the disk on the primary channel, one PRD entry.
 */
#define IDE_DEVFN       QPCI_DEVFN(6, 0)
#define IDE_DEVID       IDE_DEVFN
#define IDE_BASE        0x1f0
#define IDE_PRDT        0x4000
#define IDE_BUF         0x10000

#define ATA_REG_ERROR   1
#define ATA_REG_NSECT   2
#define ATA_REG_LBAL    3
#define ATA_REG_LBAM    4
#define ATA_REG_LBAH    5
#define ATA_REG_DEVICE  6
#define ATA_REG_STATUS  7                    /* the command, written */
#define ATA_DEVICE_LBA  0x40
#define ATA_READ_DMA    0xc8
#define ATA_ERR_ABRT    0x04

#define BM_CMD          0
#define BM_STATUS       2
#define BM_PRDT         4
#define BM_CMD_START    0x01
#define BM_CMD_TO_MEM   0x08
#define BM_ST_ACTIVE    0x01
#define BM_ST_ERROR     0x02
#define BM_ST_INTR      0x04
#define PRD_EOT         (1u << 31)

typedef struct Ide {
    Machine m;
    QPCIDevice *dev;
    QPCIBar bmdma, ata;
} Ide;

static void ide_init(Ide *d)
{
    machine_start(&d->m, "-device piix3-ide,id=piix,addr=0x6 "
                         "-device ide-hd,drive=disk0,bus=piix.0");
    d->dev = qpci_device_find(d->m.pcibus, IDE_DEVFN);
    g_assert(d->dev);
    d->bmdma = qpci_iomap(d->dev, 4, NULL);
    d->ata = qpci_legacy_iomap(d->dev, IDE_BASE);
    qpci_device_enable(d->dev);
    iommu_build_tables(&d->m.iommu, IDE_DEVID);
    map_dev_mem(&d->m, 0, IDE_BUF + 8 * SECTOR);
    map_refused_buffers(&d->m);
    assert_no_events(&d->m);
}

static void ide_free(Ide *d)
{
    g_free(d->dev);
    machine_stop(&d->m);
}

/*
 * READ DMA of count sectors at lba into iova, as Linux's ata_bmdma does;
 * returns the Bus Master IDE Status once the transfer ended or the drive
 * interrupted, with the bus master stopped.
 */
static uint8_t ide_read_dma(Ide *d, uint32_t lba, int count, uint64_t iova)
{
    uint32_t prd[2] = {
        cpu_to_le32(iova), cpu_to_le32(PRD_EOT | (count * SECTOR)),
    };
    uint8_t status = 0;

    qtest_memwrite(d->m.qts, DEV_MEM + IDE_PRDT, prd, sizeof(prd));
    qpci_io_writeb(d->dev, d->bmdma, BM_CMD, 0);
    qpci_io_writeb(d->dev, d->bmdma, BM_STATUS, BM_ST_ERROR | BM_ST_INTR);
    qpci_io_writel(d->dev, d->bmdma, BM_PRDT, IDE_PRDT);
    qpci_io_writeb(d->dev, d->ata, ATA_REG_DEVICE,
                   ATA_DEVICE_LBA | ((lba >> 24) & 0xf));
    qpci_io_writeb(d->dev, d->ata, ATA_REG_NSECT, count);
    qpci_io_writeb(d->dev, d->ata, ATA_REG_LBAL, lba);
    qpci_io_writeb(d->dev, d->ata, ATA_REG_LBAM, lba >> 8);
    qpci_io_writeb(d->dev, d->ata, ATA_REG_LBAH, lba >> 16);
    qpci_io_writeb(d->dev, d->ata, ATA_REG_STATUS, ATA_READ_DMA);
    qpci_io_writeb(d->dev, d->bmdma, BM_CMD, BM_CMD_START | BM_CMD_TO_MEM);
    for (int i = 0; i < 5000; i++) {
        status = qpci_io_readb(d->dev, d->bmdma, BM_STATUS);
        if ((status & (BM_ST_ACTIVE | BM_ST_INTR)) != BM_ST_ACTIVE) {
            qpci_io_writeb(d->dev, d->bmdma, BM_CMD, 0);
            return status;
        }
        g_usleep(1000);
    }
    g_assert_not_reached();
}

static void ide_assert_ok(Ide *d, uint8_t status)
{
    g_assert_cmphex(status & (BM_ST_ERROR | BM_ST_INTR), ==, BM_ST_INTR);
    g_assert_cmphex(qpci_io_readb(d->dev, d->ata, ATA_REG_STATUS) &
                    ATA_STAT_ERR, ==, 0);
}

static void test_ide_bmdma_read_refused(void)
{
    Ide d;
    uint8_t status;

    ide_init(&d);

    /* Allowed: the sectors arrive. */
    status = ide_read_dma(&d, 8, 4, IDE_BUF);
    ide_assert_ok(&d, status);
    assert_sectors(&d.m, DEV_MEM + IDE_BUF, 8, 4);
    assert_no_events(&d.m);

    /*
     * Into a read-only page: refused, nothing written there; the bus
     * master's Error bit (a master or target abort) and the command
     * aborted.
     */
    status = ide_read_dma(&d, 16, 1, REFUSED_WRITE);
    g_assert_cmphex(status & (BM_ST_ACTIVE | BM_ST_ERROR | BM_ST_INTR), ==,
                    BM_ST_ERROR | BM_ST_INTR);
    g_assert_cmphex(qpci_io_readb(d.dev, d.ata, ATA_REG_STATUS) &
                    ATA_STAT_ERR, ==, ATA_STAT_ERR);
    g_assert_cmphex(qpci_io_readb(d.dev, d.ata, ATA_REG_ERROR) &
                    ATA_ERR_ABRT, ==, ATA_ERR_ABRT);
    assert_canaries(&d.m);
    assert_one_page_fault(&d.m, IDE_DEVID, REFUSED_WRITE, true);

    /* The next command (the Error bit cleared by writing it) reads. */
    status = ide_read_dma(&d, 24, 2, IDE_BUF);
    ide_assert_ok(&d, status);
    assert_sectors(&d.m, DEV_MEM + IDE_BUF, 24, 2);
    assert_no_events(&d.m);
    ide_free(&d);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/ioguard-dma-error/ahci/read-dma-refused",
                   test_ahci_read_dma_refused);
    qtest_add_func("/ioguard-dma-error/ahci/read-fpdma-refused",
                   test_ahci_read_fpdma_refused);
    qtest_add_func("/ioguard-dma-error/ahci/write-refused",
                   test_ahci_write_refused);
    qtest_add_func("/ioguard-dma-error/ahci/allowed-to-not-ram",
                   test_ahci_allowed_to_not_ram);
    qtest_add_func("/ioguard-dma-error/ide/bmdma-read-refused",
                   test_ide_bmdma_read_refused);
    qtest_add_func("/ioguard-dma-error/nvme/read-refused",
                   test_nvme_read_refused);
    qtest_add_func("/ioguard-dma-error/nvme/write-refused",
                   test_nvme_write_refused);
    qtest_add_func("/ioguard-dma-error/nvme/identify-refused",
                   test_nvme_identify_refused);
    return g_test_run();
}
