/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ioguard_nic: what the module's two files share. ioguard_nic_main.c is the
 * driver (rings, NAPI, interrupts, recovery, ethtool, probe);
 * ioguard_nic_dma_test.c is the debugfs harness of the device's DMA test
 * engine, which needs the driver's state, its register accessors and its
 * reset.
 */
#ifndef IOGUARD_NIC_H
#define IOGUARD_NIC_H

#include <linux/completion.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/mutex.h>
#include <linux/netdevice.h>
#include <linux/pci.h>
#include <linux/ratelimit.h>
#include <linux/spinlock.h>
#include <linux/timer.h>
#include <linux/types.h>
#include <linux/u64_stats_sync.h>
#include <linux/workqueue.h>

#include "hw/ioguard/nic-regs.h"

/*
 * A descriptor ring. The device consumes from HEAD up to TAIL; we produce at
 * next_to_use (what we write to TAIL) and reclaim at next_to_clean. One slot
 * stays unused: HEAD == TAIL means empty, so the ring is full when
 * next_to_use + 1 == next_to_clean.
 */
struct ioguard_ring {
	struct ioguard_nic_desc *desc;
	dma_addr_t desc_dma;
	unsigned int size;
	unsigned int next_to_use;
	unsigned int next_to_clean;
};

/* Counters written by NAPI (RX and TX completion). */
struct ioguard_napi_stats {
	struct u64_stats_sync syncp;
	u64_stats_t rx_packets, rx_bytes, rx_errors, rx_dropped, rx_copied;
	u64_stats_t tx_packets, tx_bytes, tx_errors;
	u64_stats_t above_4g;
};

/* Counters written by ndo_start_xmit (serialized by the TX queue lock). */
struct ioguard_xmit_stats {
	struct u64_stats_sync syncp;
	u64_stats_t tx_dropped, tx_copied, sg_merged, linearized, above_4g;
};

/* The device's own counters, 32-bit registers extended to 64 bits. */
enum {
	IOGUARD_DEV_TX_PACKETS,
	IOGUARD_DEV_RX_PACKETS,
	IOGUARD_DEV_RX_DROPPED,
	IOGUARD_DEV_DMA_ERRORS,
	IOGUARD_DEV_NCOUNTERS,
};

#define IOGUARD_ERRQ_LEN 16

struct ioguard_err_record {
	u32 code;
	u32 addr;
};

struct ioguard_nic {
	struct net_device *netdev;
	struct pci_dev *pdev;
	struct device *dev;             /* &pdev->dev: the DMA device */
	void __iomem *regs;
	u32 cap;
	bool has_sg;
	unsigned int max_frags;         /* descriptors one TX packet may use */

	struct napi_struct napi;
	struct ioguard_ring tx, rx;
	struct ioguard_tx_slot *tx_slots;
	struct scatterlist *tx_sg;      /* no CAP.SG: IOGUARD_TX_SG_MAX per slot */
	struct dma_pool *tx_copy_pool;  /* the slots' copy buffers */
	unsigned int tx_copybreak;      /* ethtool tx-copybreak */
	struct ioguard_rx_slot *rx_slots;
	struct page_pool *rx_pool;      /* while the rings are up */
	bool rings_up;                  /* rings programmed and enabled (rtnl) */
	struct timer_list refill_timer; /* retries an RX refill that found no memory */

	/* CTRL and INT_MASK are read-modify-written from several contexts. */
	spinlock_t reg_lock;
	u32 ctrl;
	u32 int_mask;

	/* Errors the interrupt handler took from the device, for err_work. */
	spinlock_t err_lock;
	struct ioguard_err_record errq[IOGUARD_ERRQ_LEN];
	unsigned int errq_len;
	unsigned int errq_lost;
	bool reset_requested;
	struct work_struct err_work;
	struct ratelimit_state err_rs;

	/* The test engine: one command at a time (te_lock). */
	struct mutex te_lock;
	struct completion te_done;
	u32 te_err_code;                /* the TE_* error the IRQ handler saw */
	char te_result[192];
	bool sva;                       /* IOPF and SVA enabled: sva-read/-write */
	struct dentry *debugfs;

	struct ioguard_napi_stats nstats;
	struct ioguard_xmit_stats xstats;
	atomic64_t dma_errors;
	atomic64_t error_events;
	atomic64_t resets;

	spinlock_t devctr_lock;
	u32 devctr_last[IOGUARD_DEV_NCOUNTERS];
	u64 devctr_total[IOGUARD_DEV_NCOUNTERS];
};

static inline u32 ioguard_rd(struct ioguard_nic *nic, u32 reg)
{
	return ioread32(nic->regs + reg);
}

static inline void ioguard_wr(struct ioguard_nic *nic, u32 reg, u32 val)
{
	iowrite32(val, nic->regs + reg);
}

/* ioguard_nic_main.c */
void ioguard_reset(struct ioguard_nic *nic, const char *why);

/* ioguard_nic_dma_test.c: debugfs's <pci device>/dma_test */
extern const struct file_operations ioguard_dma_test_fops;
/* Shared virtual addressing for the test engine (PASID, PRI), if the
 * device and the IOMMU offer it. */
void ioguard_sva_enable(struct ioguard_nic *nic);
void ioguard_sva_disable(struct ioguard_nic *nic);

#endif
