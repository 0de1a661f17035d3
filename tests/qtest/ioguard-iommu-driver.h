/*
 * What the ioguard qtests share to drive ioguard-iommu as Linux does: its
 * tables in guest memory, the command buffer, the event log, device table
 * entries and one 3-level page table whose level-1 table covers IOVA
 * 0..2 MiB.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef IOGUARD_IOMMU_DRIVER_H
#define IOGUARD_IOMMU_DRIVER_H

#include "libqtest.h"
#include "qemu/bswap.h"
#include "hw/ioguard/amd-vi-regs.h"

/* Guest-physical layout of the tables */
#define DEV_TABLE       0x1000000            /* 2 MiB: every requester */
#define CMD_BUF         0x1200000            /* 256 entries */
#define EVENT_LOG       0x1210000            /* 256 entries */
#define SEMAPHORE       0x1220000
#define PT_ROOT         0x1300000            /* level 3 */
#define PT_L2           0x1301000
#define PT_L1           0x1302000
#define DOMAIN          0x42

typedef struct IoguardIommu {
    QTestState *qts;
    uint64_t cmd_tail;
    uint64_t event_head;
    uint64_t sem;
} IoguardIommu;

typedef struct Event {
    uint32_t dw[4];
} Event;

static inline uint64_t iommu_reg_read(IoguardIommu *m, uint64_t off)
{
    return qtest_readq(m->qts, IOGUARD_MMIO_BASE + off);
}

static inline void iommu_reg_write(IoguardIommu *m, uint64_t off, uint64_t v)
{
    qtest_writeq(m->qts, IOGUARD_MMIO_BASE + off, v);
}

/* As Linux: tables first, then the enables. */
static inline void iommu_enable(IoguardIommu *m, QTestState *qts)
{
    memset(m, 0, sizeof(*m));
    m->qts = qts;
    iommu_reg_write(m, MMIO_DEV_TABLE_OFFSET, DEV_TABLE | 0x1ff);
    iommu_reg_write(m, MMIO_CMD_BUF_OFFSET, CMD_BUF | (8ULL << 56));
    iommu_reg_write(m, MMIO_EVT_BUF_OFFSET, EVENT_LOG | (8ULL << 56));
    iommu_reg_write(m, MMIO_CONTROL_OFFSET,
                    1ULL << CONTROL_IOMMU_EN | 1ULL << CONTROL_EVT_LOG_EN |
                    1ULL << CONTROL_CMDBUF_EN);
}

static inline void iommu_queue_command(IoguardIommu *m, uint32_t dw0,
                                       uint32_t dw1, uint32_t dw2,
                                       uint32_t dw3)
{
    uint32_t cmd[4] = { cpu_to_le32(dw0), cpu_to_le32(dw1),
                        cpu_to_le32(dw2), cpu_to_le32(dw3) };

    qtest_memwrite(m->qts, CMD_BUF + m->cmd_tail, cmd, sizeof(cmd));
    m->cmd_tail = (m->cmd_tail + 16) % (256 * 16);
    qtest_writel(m->qts, IOGUARD_MMIO_BASE + MMIO_CMD_TAIL_OFFSET,
                 m->cmd_tail);
}

static inline void iommu_completion_wait(IoguardIommu *m)
{
    m->sem++;
    iommu_queue_command(m, SEMAPHORE | CMD_COMPL_WAIT_STORE_MASK,
                        CMD_COMPL_WAIT << 28, m->sem, 0);
    g_assert_cmphex(qtest_readq(m->qts, SEMAPHORE), ==, m->sem);
}

/* Writes a DTE and invalidates it, as a driver must. */
static inline void iommu_set_dte(IoguardIommu *m, uint16_t devid,
                                 uint64_t q0, uint64_t q1)
{
    qtest_writeq(m->qts, DEV_TABLE + devid * 32 + 8, q1);
    qtest_writeq(m->qts, DEV_TABLE + devid * 32, q0);
    iommu_queue_command(m, devid, CMD_INV_DEV_ENTRY << 28, 0, 0);
    iommu_completion_wait(m);
}

/* The (empty) page table, and devid translated through it. */
static inline void iommu_build_tables(IoguardIommu *m, uint16_t devid)
{
    uint64_t pde = IOMMU_PTE_PR | IOMMU_PTE_IR | IOMMU_PTE_IW;

    qtest_memset(m->qts, PT_ROOT, 0, 3 * 4096);
    qtest_writeq(m->qts, PT_ROOT, PT_L2 | pde | 2ULL << 9);
    qtest_writeq(m->qts, PT_L2, PT_L1 | pde | 1ULL << 9);
    iommu_set_dte(m, devid, DTE_FLAG_V | DTE_FLAG_TV |
                  3ULL << DTE_MODE_SHIFT | PT_ROOT | DTE_FLAG_IR |
                  DTE_FLAG_IW, DOMAIN);
}

/* Maps iova (below 2 MiB) to gpa; not cached yet, so no invalidation. */
static inline void iommu_map_page(IoguardIommu *m, uint64_t iova,
                                  uint64_t gpa, bool write)
{
    qtest_writeq(m->qts, PT_L1 + ((iova >> 12) & 0x1ff) * 8,
                 gpa | IOMMU_PTE_PR | IOMMU_PTE_FC | IOMMU_PTE_IR |
                 (write ? IOMMU_PTE_IW : 0));
}

/* The events logged since the last call, at most max. */
static inline int iommu_read_events(IoguardIommu *m, Event *out, int max)
{
    uint64_t tail = qtest_readl(m->qts, IOGUARD_MMIO_BASE +
                                MMIO_EVT_TAIL_OFFSET);
    int n = 0;

    while (m->event_head != tail && n < max) {
        qtest_memread(m->qts, EVENT_LOG + m->event_head, out[n].dw, 16);
        for (int i = 0; i < 4; i++) {
            out[n].dw[i] = le32_to_cpu(out[n].dw[i]);
        }
        m->event_head = (m->event_head + 16) % (256 * 16);
        n++;
    }
    qtest_writel(m->qts, IOGUARD_MMIO_BASE + MMIO_EVT_HEAD_OFFSET,
                 m->event_head);
    return n;
}

#endif
