// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ioguard_nic: Linux driver for ioguard-nic (PCI 1234:10a1), the 32-bit
 * bus-master NIC of the ioguard project.
 *
 * The device can only produce 32-bit DMA addresses. Every buffer goes through
 * the DMA API with a 32-bit mask, so behind an IOMMU (ioguard-iommu) the
 * device reaches memory above 4 GiB through IOVAs and, without one, the DMA
 * layer bounces. The driver counts the packet buffers it maps above 4 GiB
 * (buffers_above_4g) so that a test can see which of the two happened.
 *
 * What the driver does:
 *  - one TX and one RX descriptor ring (coherent memory), NAPI for RX and TX
 *    completion, one interrupt (MSI, or INTx with use_msi=0);
 *  - TX copy: frames up to tx_copybreak bytes (an ethtool tunable; by
 *    default every frame of a standard MTU), and the headers of longer ones,
 *    are copied into a buffer mapped once per ring slot. Behind an IOMMU a
 *    map and an unmap cost an IOVA and two page-table updates, more than
 *    copying 1500 bytes, and the device then sees only the driver's own
 *    buffers, never the rest of the page an skb sits in nor a page whose
 *    unmap is still waiting for a lazy flush (Markuze et al., "When Copy Is
 *    Faster Than Zero Copy", ASPLOS 2016). Longer frames, and every frame
 *    with tx-copybreak 0, are mapped piece by piece;
 *  - TX scatter/gather: one descriptor per skb piece when the device has
 *    NIC_CAP_SG; without it, the pieces are mapped as a scatterlist and sent
 *    as one descriptor when the IOMMU merged them into one IOVA range,
 *    otherwise the skb is linearized;
 *  - RX into whole pages from a page_pool that maps each page once and
 *    recycles it, attached to the skb as a fragment (small frames are
 *    copied and the page is kept): no map/unmap per received frame;
 *  - internal loopback as NETIF_F_LOOPBACK;
 *  - device errors: logged with the device's code and address, counted, and
 *    a ring the device stopped is recovered by a reset from a workqueue;
 *  - the device's DMA test engine through debugfs
 *    (/sys/kernel/debug/ioguard_nic/<pci device>/dma_test), in
 *    ioguard_nic_dma_test.c; ioguard_nic.h has what the two files share.
 *
 * The register map and the descriptor format are the contract shared with
 * the device model: include/hw/ioguard/nic-regs.h.
 */

#include <linux/completion.h>
#include <linux/debugfs.h>
#include <linux/dma-mapping.h>
#include <linux/dmapool.h>
#include <linux/etherdevice.h>
#include <linux/ethtool.h>
#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/netdevice.h>
#include <linux/pci.h>
#include <linux/ratelimit.h>
#include <linux/rtnetlink.h>
#include <linux/scatterlist.h>
#include <linux/sizes.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/timer.h>
#include <linux/u64_stats_sync.h>
#include <linux/workqueue.h>
#include <linux/version.h>
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 6, 0)
#include <net/page_pool/helpers.h>
#else
#include <net/page_pool.h>
#endif

#include "ioguard_nic.h"

#define DRV_NAME "ioguard_nic"

static_assert(sizeof(struct ioguard_nic_desc) == NIC_DESC_SIZE);

/* 6.10 renamed the legacy interrupt flag; 6.1 only knows the old name. */
#ifndef PCI_IRQ_INTX
#define PCI_IRQ_INTX PCI_IRQ_LEGACY
#endif

static bool use_msi = true;
module_param(use_msi, bool, 0444);
MODULE_PARM_DESC(use_msi, "Use MSI (default 1); 0 forces the INTx interrupt");

static unsigned int rx_ring = 256;
module_param(rx_ring, uint, 0444);
MODULE_PARM_DESC(rx_ring, "RX ring size in descriptors (default 256)");

static unsigned int tx_ring = 256;
module_param(tx_ring, uint, 0444);
MODULE_PARM_DESC(tx_ring, "TX ring size in descriptors (default 256)");

/*
 * Each TX slot has a buffer this long, mapped once: frames up to
 * tx_copybreak bytes are copied there instead of being mapped.
 */
#define IOGUARD_TX_COPY_LEN     2048

static unsigned int tx_copybreak = IOGUARD_TX_COPY_LEN;
module_param(tx_copybreak, uint, 0444);
MODULE_PARM_DESC(tx_copybreak, "TX frames up to this many bytes are copied "
		 "into premapped buffers, not mapped (default and most 2048; "
		 "ethtool's tx-copybreak tunable changes it per device)");

/*
 * One RX buffer is one page, so the largest frame (MTU + Ethernet header +
 * a VLAN tag) must fit in 4 KiB: hence the MTU limit.
 */
#define IOGUARD_MIN_MTU         ETH_MIN_MTU
#define IOGUARD_MAX_MTU         3800
#define IOGUARD_RX_BUF_LEN      PAGE_SIZE
/* Frames up to this size are copied into a small skb and the page kept. */
#define IOGUARD_RX_COPYBREAK    256
/* Linear part of an skb that gets its payload as a page fragment. */
#define IOGUARD_RX_HDR_LEN      256
/*
 * The heads of frames longer than tx_copybreak are still copied into the
 * slot's premapped buffer up to this size: copying 256 bytes is cheaper
 * than a map and an unmap whatever the copybreak.
 */
#define IOGUARD_TX_HEAD_COPY_LEN        256
/* Smallest ring that still holds one maximal TX packet next to the unused slot. */
#define IOGUARD_MIN_RING        (NIC_MAX_FRAGS + 2)
/* Scatterlist entries of one TX skb without CAP.SG: the head and its frags. */
#define IOGUARD_TX_SG_MAX       (MAX_SKB_FRAGS + 1)

/* Interrupt causes handled by NAPI: masked while it polls. */
#define IOGUARD_INT_NAPI        (NIC_INT_TX_DONE | NIC_INT_RX)
/* Causes enabled for as long as the device is bound. */
#define IOGUARD_INT_ALWAYS      (NIC_INT_ERROR | NIC_INT_TEST_DONE | NIC_INT_LINK)

static const char *const ioguard_err_names[] = NIC_ERR_NAMES;

static const char *ioguard_err_name(u32 code)
{
	return code < ARRAY_SIZE(ioguard_err_names) ? ioguard_err_names[code]
						     : "unknown";
}

static bool ioguard_err_is_dma(u32 code)
{
	return code == NIC_ERR_TX_DMA || code == NIC_ERR_RX_DMA ||
	       code == NIC_ERR_TE_DMA;
}

/* How a TX slot's buffer was mapped, so that completion unmaps it alike. */
enum ioguard_tx_map {
	IOGUARD_MAP_NONE,
	IOGUARD_MAP_SINGLE,     /* dma_map_single of the skb head */
	IOGUARD_MAP_PAGE,       /* skb_frag_dma_map of a fragment */
	IOGUARD_MAP_SG,         /* dma_map_sg of the whole skb (no CAP.SG) */
	IOGUARD_MAP_COPY,       /* copied to the slot's copy buffer */
};

struct ioguard_tx_slot {
	struct sk_buff *skb;    /* on the packet's last slot only */
	dma_addr_t dma;
	unsigned int len;
	unsigned int bytes;     /* BQL: what netdev_tx_sent_queue was told */
	u8 map;                 /* enum ioguard_tx_map */
	u8 nents;               /* IOGUARD_MAP_SG: entries given to dma_map_sg */
	u8 *copy;               /* IOGUARD_TX_COPY_LEN from tx_copy_pool */
	dma_addr_t copy_dma;
};

struct ioguard_rx_slot {
	struct page *page;      /* from rx_pool, which keeps it mapped */
	dma_addr_t dma;
};

static const u32 ioguard_dev_counter_regs[IOGUARD_DEV_NCOUNTERS] = {
	NIC_REG_TX_PACKETS, NIC_REG_RX_PACKETS, NIC_REG_RX_DROPPED,
	NIC_REG_DMA_ERRORS,
};

static struct dentry *ioguard_debugfs_root;

/*
 * The descriptor's fields are declared as plain integers in the shared
 * header; they are little-endian in memory.
 */
static void ioguard_desc_post(struct ioguard_nic_desc *d, dma_addr_t dma,
			      unsigned int len, u16 flags)
{
	d->addr = (__force u32)cpu_to_le32(lower_32_bits(dma));
	d->len = (__force u16)cpu_to_le16(len);
	d->status = 0;
	d->written_len = 0;
	d->reserved = 0;
	/* The device must never see OWN with a stale address or length. */
	dma_wmb();
	WRITE_ONCE(d->flags, (__force u16)cpu_to_le16(flags | NIC_DESC_OWN));
}

/*
 * Has the device handed the descriptor back? If so, *status and *len are its
 * write-back (the device writes them before it clears OWN).
 */
static bool ioguard_desc_done(struct ioguard_nic_desc *d, u16 *status,
			      u16 *len)
{
	u16 flags = le16_to_cpu((__force __le16)READ_ONCE(d->flags));

	if (flags & NIC_DESC_OWN)
		return false;
	dma_rmb();
	*status = le16_to_cpu((__force __le16)READ_ONCE(d->status));
	*len = le16_to_cpu((__force __le16)READ_ONCE(d->written_len));
	return true;
}

static unsigned int ioguard_ring_next(const struct ioguard_ring *r,
				      unsigned int i)
{
	return i + 1 == r->size ? 0 : i + 1;
}

/* Free slots, keeping the one that must stay unused. */
static unsigned int ioguard_ring_free(const struct ioguard_ring *r)
{
	unsigned int ntc = READ_ONCE(r->next_to_clean);
	unsigned int ntu = READ_ONCE(r->next_to_use);

	return (ntc + r->size - ntu - 1) % r->size;
}

static void ioguard_count_high(u64_stats_t *ctr, phys_addr_t phys)
{
	if (phys >= SZ_4G)
		u64_stats_inc(ctr);
}

/* Registers shared between contexts */

static void ioguard_ctrl_update(struct ioguard_nic *nic, u32 clear, u32 set)
{
	unsigned long flags;

	spin_lock_irqsave(&nic->reg_lock, flags);
	nic->ctrl = (nic->ctrl & ~clear) | set;
	ioguard_wr(nic, NIC_REG_CTRL, nic->ctrl);
	spin_unlock_irqrestore(&nic->reg_lock, flags);
}

static void ioguard_irq_update(struct ioguard_nic *nic, u32 clear, u32 set)
{
	unsigned long flags;

	spin_lock_irqsave(&nic->reg_lock, flags);
	nic->int_mask = (nic->int_mask & ~clear) | set;
	ioguard_wr(nic, NIC_REG_INT_MASK, nic->int_mask);
	spin_unlock_irqrestore(&nic->reg_lock, flags);
}

/*
 * Fold the device counters into 64-bit totals. Called often enough (every
 * statistics read and before every reset) that a register cannot wrap twice
 * in between.
 */
static void ioguard_devctr_fold(struct ioguard_nic *nic, bool reset)
{
	unsigned long flags;
	int i;

	spin_lock_irqsave(&nic->devctr_lock, flags);
	for (i = 0; i < IOGUARD_DEV_NCOUNTERS; i++) {
		u32 now = ioguard_rd(nic, ioguard_dev_counter_regs[i]);

		nic->devctr_total[i] += (u32)(now - nic->devctr_last[i]);
		/* NIC_CTRL_RESET clears the registers: start over from 0. */
		nic->devctr_last[i] = reset ? 0 : now;
	}
	spin_unlock_irqrestore(&nic->devctr_lock, flags);
}

/*
 * Back to the power-on state: rings stopped and forgotten, test engine idle.
 * Only the bits that are configuration (loopback, promiscuous) and the
 * always-on interrupts are restored; the rings are the caller's business.
 */
static void ioguard_hw_reset(struct ioguard_nic *nic)
{
	unsigned long flags;

	ioguard_devctr_fold(nic, true);
	spin_lock_irqsave(&nic->reg_lock, flags);
	ioguard_wr(nic, NIC_REG_CTRL, NIC_CTRL_RESET);
	nic->ctrl &= NIC_CTRL_LOOPBACK | NIC_CTRL_PROMISC;
	ioguard_wr(nic, NIC_REG_CTRL, nic->ctrl);
	nic->int_mask &= IOGUARD_INT_ALWAYS;
	ioguard_wr(nic, NIC_REG_INT_MASK, nic->int_mask);
	spin_unlock_irqrestore(&nic->reg_lock, flags);
}

/* TX */

static void ioguard_tx_unmap(struct ioguard_nic *nic, unsigned int i)
{
	struct ioguard_tx_slot *slot = &nic->tx_slots[i];

	switch (slot->map) {
	case IOGUARD_MAP_SINGLE:
		dma_unmap_single(nic->dev, slot->dma, slot->len, DMA_TO_DEVICE);
		break;
	case IOGUARD_MAP_PAGE:
		dma_unmap_page(nic->dev, slot->dma, slot->len, DMA_TO_DEVICE);
		break;
	case IOGUARD_MAP_SG:
		dma_unmap_sg(nic->dev, &nic->tx_sg[i * IOGUARD_TX_SG_MAX],
			     slot->nents, DMA_TO_DEVICE);
		break;
	}
	slot->map = IOGUARD_MAP_NONE;
}

static void ioguard_tx_slot_set(struct ioguard_nic *nic, unsigned int i,
				u8 map, dma_addr_t dma, unsigned int len)
{
	struct ioguard_tx_slot *slot = &nic->tx_slots[i];

	slot->map = map;
	slot->dma = dma;
	slot->len = len;
	slot->skb = NULL;
	slot->nents = 0;
}

/* The first len bytes of skb go to slot i's copy buffer. */
static void ioguard_tx_copy(struct ioguard_nic *nic, struct sk_buff *skb,
			    unsigned int i, unsigned int len)
{
	struct ioguard_tx_slot *slot = &nic->tx_slots[i];

	skb_copy_bits(skb, 0, slot->copy, len);
	ioguard_tx_slot_set(nic, i, IOGUARD_MAP_COPY, slot->copy_dma, len);
}

static int ioguard_tx_map_linear(struct ioguard_nic *nic, struct sk_buff *skb,
				 unsigned int i)
{
	dma_addr_t dma = dma_map_single(nic->dev, skb->data, skb_headlen(skb),
					DMA_TO_DEVICE);

	if (dma_mapping_error(nic->dev, dma))
		return -ENOMEM;
	ioguard_count_high(&nic->xstats.above_4g, virt_to_phys(skb->data));
	ioguard_tx_slot_set(nic, i, IOGUARD_MAP_SINGLE, dma, skb_headlen(skb));
	return 1;
}

/*
 * With CAP.SG: the head and each fragment get a descriptor of their own.
 * Returns the number of slots filled from next_to_use, or a negative errno
 * with nothing left mapped.
 */
static int ioguard_tx_map_frags(struct ioguard_nic *nic, struct sk_buff *skb,
				bool *linearized)
{
	struct ioguard_ring *r = &nic->tx;
	unsigned int nfrags = skb_shinfo(skb)->nr_frags;
	unsigned int i = r->next_to_use, used = 0, f;

	if ((skb_headlen(skb) ? 1 : 0) + nfrags > nic->max_frags) {
		if (skb_linearize(skb))
			return -ENOMEM;
		*linearized = true;
		nfrags = 0;
	}
	if (skb_headlen(skb) && skb_headlen(skb) <= IOGUARD_TX_HEAD_COPY_LEN) {
		ioguard_tx_copy(nic, skb, i, skb_headlen(skb));
		i = ioguard_ring_next(r, i);
		used++;
	} else if (skb_headlen(skb)) {
		if (ioguard_tx_map_linear(nic, skb, i) < 0)
			return -ENOMEM;
		i = ioguard_ring_next(r, i);
		used++;
	}
	for (f = 0; f < nfrags; f++) {
		const skb_frag_t *frag = &skb_shinfo(skb)->frags[f];
		unsigned int len = skb_frag_size(frag);
		dma_addr_t dma;

		if (!len)       /* the device refuses zero-length descriptors */
			continue;
		dma = skb_frag_dma_map(nic->dev, frag, 0, len, DMA_TO_DEVICE);
		if (dma_mapping_error(nic->dev, dma))
			goto unwind;
		ioguard_count_high(&nic->xstats.above_4g,
				   page_to_phys(skb_frag_page(frag)) +
				   skb_frag_off(frag));
		ioguard_tx_slot_set(nic, i, IOGUARD_MAP_PAGE, dma, len);
		i = ioguard_ring_next(r, i);
		used++;
	}
	return used;

unwind:
	for (i = r->next_to_use; used--; i = ioguard_ring_next(r, i))
		ioguard_tx_unmap(nic, i);
	return -ENOMEM;
}

/*
 * Without CAP.SG a packet is exactly one descriptor. A nonlinear skb is
 * mapped as a scatterlist first: an IOMMU that places the pieces in one
 * contiguous IOVA range returns a single DMA segment, and the device can take
 * it as it is. Only otherwise does the skb get copied into one buffer.
 */
static int ioguard_tx_map_nosg(struct ioguard_nic *nic, struct sk_buff *skb,
			       bool *merged, bool *linearized)
{
	unsigned int i = nic->tx.next_to_use;
	struct scatterlist *sg = &nic->tx_sg[i * IOGUARD_TX_SG_MAX];
	struct scatterlist *s;
	int nsg, count, k;

	if (!skb_is_nonlinear(skb))
		return ioguard_tx_map_linear(nic, skb, i);

	nsg = -EMSGSIZE;
	if (skb_shinfo(skb)->nr_frags + 1 <= IOGUARD_TX_SG_MAX) {
		sg_init_table(sg, skb_shinfo(skb)->nr_frags + 1);
		nsg = skb_to_sgvec(skb, sg, 0, skb->len);
	}
	if (nsg > 0) {
		count = dma_map_sg(nic->dev, sg, nsg, DMA_TO_DEVICE);
		if (!count)
			return -ENOMEM;
		if (count == 1) {
			for_each_sg(sg, s, nsg, k)
				ioguard_count_high(&nic->xstats.above_4g,
						   sg_phys(s));
			ioguard_tx_slot_set(nic, i, IOGUARD_MAP_SG,
					    sg_dma_address(sg), sg_dma_len(sg));
			nic->tx_slots[i].nents = nsg;
			*merged = nsg > 1;
			return 1;
		}
		dma_unmap_sg(nic->dev, sg, nsg, DMA_TO_DEVICE);
	}
	if (skb_linearize(skb))
		return -ENOMEM;
	*linearized = true;
	return ioguard_tx_map_linear(nic, skb, i);
}

static netdev_tx_t ioguard_start_xmit(struct sk_buff *skb,
				      struct net_device *netdev)
{
	struct ioguard_nic *nic = netdev_priv(netdev);
	struct ioguard_ring *r = &nic->tx;
	bool merged = false, linearized = false, copied = false;
	unsigned int i, last = 0, bytes;
	int n, k;

	/* Ethernet's minimum frame, as real NICs pad it. Frees skb on error. */
	if (eth_skb_pad(skb))
		goto dropped;
	if (unlikely(skb->len > NIC_MAX_FRAME))
		goto drop;

	if (unlikely(ioguard_ring_free(r) < nic->max_frags)) {
		/* The queue is stopped before this can happen: a bug if it does. */
		netif_stop_queue(netdev);
		netdev_err_once(netdev, "TX ring full with the queue awake\n");
		return NETDEV_TX_BUSY;
	}

	if (skb->len <= READ_ONCE(nic->tx_copybreak)) {
		ioguard_tx_copy(nic, skb, r->next_to_use, skb->len);
		copied = true;
		n = 1;
	} else if (nic->has_sg) {
		n = ioguard_tx_map_frags(nic, skb, &linearized);
	} else {
		n = ioguard_tx_map_nosg(nic, skb, &merged, &linearized);
	}
	if (n <= 0)
		goto drop;

	bytes = skb->len;
	for (k = 0, i = r->next_to_use; k < n; k++, i = ioguard_ring_next(r, i)) {
		struct ioguard_tx_slot *slot = &nic->tx_slots[i];

		last = i;
		ioguard_desc_post(&r->desc[i], slot->dma, slot->len,
				  k + 1 == n ? NIC_DESC_EOP : 0);
	}
	nic->tx_slots[last].skb = skb;
	nic->tx_slots[last].bytes = bytes;

	u64_stats_update_begin(&nic->xstats.syncp);
	if (copied)
		u64_stats_inc(&nic->xstats.tx_copied);
	if (merged)
		u64_stats_inc(&nic->xstats.sg_merged);
	if (linearized)
		u64_stats_inc(&nic->xstats.linearized);
	u64_stats_update_end(&nic->xstats.syncp);

	/* The completion path reads next_to_use: publish the slots first. */
	smp_store_release(&r->next_to_use, i);
	skb_tx_timestamp(skb);

	if (__netdev_tx_sent_queue(netdev_get_tx_queue(netdev, 0), bytes,
				   netdev_xmit_more()))
		ioguard_wr(nic, NIC_REG_TX_TAIL, i);    /* the doorbell */

	if (unlikely(ioguard_ring_free(r) < nic->max_frags)) {
		netif_stop_queue(netdev);
		/* Completion may have freed slots before it saw the stop. */
		smp_mb();
		if (ioguard_ring_free(r) >= nic->max_frags)
			netif_wake_queue(netdev);
		else
			/* a stopped queue gets no xmit_more: ring now */
			ioguard_wr(nic, NIC_REG_TX_TAIL, i);
	}
	return NETDEV_TX_OK;

drop:
	dev_kfree_skb_any(skb);
dropped:
	u64_stats_update_begin(&nic->xstats.syncp);
	u64_stats_inc(&nic->xstats.tx_dropped);
	u64_stats_update_end(&nic->xstats.syncp);
	return NETDEV_TX_OK;
}

/* Reclaim the descriptors the device handed back. From NAPI. */
static void ioguard_tx_clean(struct ioguard_nic *nic, int budget)
{
	struct ioguard_ring *r = &nic->tx;
	unsigned int i = r->next_to_clean;
	unsigned int ntu = smp_load_acquire(&r->next_to_use);
	unsigned int pkts = 0, bytes = 0;
	u64 ok = 0, ok_bytes = 0, errors = 0;

	while (i != ntu) {
		struct ioguard_tx_slot *slot = &nic->tx_slots[i];
		u16 status, len;

		if (!ioguard_desc_done(&r->desc[i], &status, &len))
			break;
		ioguard_tx_unmap(nic, i);
		if (slot->skb) {
			u32 code = status >> NIC_DESC_ST_ERR_SHIFT;

			if (status & NIC_DESC_ST_ERROR) {
				errors++;
				/* the device did not send it */
				if (ioguard_err_is_dma(code))
					atomic64_inc(&nic->dma_errors);
			} else {
				ok++;
				ok_bytes += slot->skb->len;
			}
			pkts++;
			bytes += slot->bytes;
			napi_consume_skb(slot->skb, budget);
			slot->skb = NULL;
		}
		i = ioguard_ring_next(r, i);
	}
	if (i == r->next_to_clean)
		return;

	u64_stats_update_begin(&nic->nstats.syncp);
	u64_stats_add(&nic->nstats.tx_packets, ok);
	u64_stats_add(&nic->nstats.tx_bytes, ok_bytes);
	u64_stats_add(&nic->nstats.tx_errors, errors);
	u64_stats_update_end(&nic->nstats.syncp);

	netdev_completed_queue(nic->netdev, pkts, bytes);
	smp_store_release(&r->next_to_clean, i);
	/* Pairs with the barrier in start_xmit after it stopped the queue. */
	smp_mb();
	if (netif_queue_stopped(nic->netdev) &&
	    ioguard_ring_free(r) >= nic->max_frags)
		netif_wake_queue(nic->netdev);
}

/* RX */

/*
 * RX pages come from a page_pool that maps them once (PP_FLAG_DMA_MAP) and
 * takes them back when the stack frees the skb, already mapped: a received
 * frame costs no dma_map/dma_unmap, which behind an IOMMU is the guest's
 * largest per-frame cost.
 */
static int ioguard_rx_pool_create(struct ioguard_nic *nic)
{
	struct page_pool_params pp = {
		.flags = PP_FLAG_DMA_MAP | PP_FLAG_DMA_SYNC_DEV,
		.pool_size = nic->rx.size,
		.nid = dev_to_node(nic->dev),
		.dev = nic->dev,
		.dma_dir = DMA_FROM_DEVICE,
		.max_len = IOGUARD_RX_BUF_LEN,
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
		.napi = &nic->napi,
#endif
	};
	struct page_pool *pool = page_pool_create(&pp);

	if (IS_ERR(pool))
		return PTR_ERR(pool);
	nic->rx_pool = pool;
	return 0;
}

static void ioguard_rx_pool_destroy(struct ioguard_nic *nic)
{
	/* Pages still in skbs return to the pool, which waits for them. */
	page_pool_destroy(nic->rx_pool);
	nic->rx_pool = NULL;
}

static void ioguard_rx_free_slot(struct ioguard_nic *nic,
				 struct ioguard_rx_slot *slot)
{
	page_pool_put_full_page(nic->rx_pool, slot->page, false);
	slot->page = NULL;
}

/*
 * Hand every free slot to the device, with a page for each slot that has
 * none. Returns false if a page could not be allocated or mapped.
 */
static bool ioguard_rx_refill(struct ioguard_nic *nic, gfp_t gfp)
{
	struct ioguard_ring *r = &nic->rx;
	unsigned int i = r->next_to_use;
	bool ok = true, posted = false;

	while (ioguard_ring_next(r, i) != r->next_to_clean) {
		struct ioguard_rx_slot *slot = &nic->rx_slots[i];

		if (!slot->page) {
			/* NULL if out of memory or the mapping failed. */
			struct page *page = page_pool_alloc_pages(nic->rx_pool,
								  gfp | __GFP_NOWARN);

			if (!page) {
				ok = false;
				break;
			}
			u64_stats_update_begin(&nic->nstats.syncp);
			ioguard_count_high(&nic->nstats.above_4g,
					   page_to_phys(page));
			u64_stats_update_end(&nic->nstats.syncp);
			slot->page = page;
			slot->dma = page_pool_get_dma_addr(page);
		}
		ioguard_desc_post(&r->desc[i], slot->dma, IOGUARD_RX_BUF_LEN, 0);
		i = ioguard_ring_next(r, i);
		posted = true;
	}
	if (posted) {
		r->next_to_use = i;
		ioguard_wr(nic, NIC_REG_RX_TAIL, i);
	}
	return ok;
}

static struct sk_buff *ioguard_rx_skb(struct ioguard_nic *nic,
				      struct ioguard_rx_slot *slot,
				      unsigned int len, bool *copied)
{
	void *va = page_address(slot->page);
	struct sk_buff *skb;
	unsigned int hlen;

	if (len <= IOGUARD_RX_COPYBREAK) {
		/* Small: copy it and give the page straight back. */
		skb = napi_alloc_skb(&nic->napi, len);
		if (!skb)
			return NULL;
		dma_sync_single_for_cpu(nic->dev, slot->dma, len,
					DMA_FROM_DEVICE);
		skb_put_data(skb, va, len);
		dma_sync_single_for_device(nic->dev, slot->dma, len,
					   DMA_FROM_DEVICE);
		*copied = true;
		return skb;
	}

	skb = napi_alloc_skb(&nic->napi, IOGUARD_RX_HDR_LEN);
	if (!skb)
		return NULL;
	/* The page stays mapped; the pool syncs it for the device on reuse. */
	dma_sync_single_for_cpu(nic->dev, slot->dma, len, DMA_FROM_DEVICE);
	/* Headers in the linear part, where the stack expects them. */
	hlen = eth_get_headlen(nic->netdev, va,
			       min_t(unsigned int, len, IOGUARD_RX_HDR_LEN));
	skb_put_data(skb, va, hlen);
	if (len > hlen) {
		skb_add_rx_frag(skb, 0, slot->page, hlen, len - hlen,
				IOGUARD_RX_BUF_LEN);
		skb_mark_for_recycle(skb);
	} else {
		page_pool_recycle_direct(nic->rx_pool, slot->page);
	}
	slot->page = NULL;
	return skb;
}

static int ioguard_rx_poll(struct ioguard_nic *nic, int budget)
{
	struct ioguard_ring *r = &nic->rx;
	u64 packets = 0, bytes = 0, errors = 0, dropped = 0, copies = 0;
	int done = 0;

	while (done < budget && r->next_to_clean != r->next_to_use) {
		unsigned int i = r->next_to_clean;
		struct ioguard_rx_slot *slot = &nic->rx_slots[i];
		struct sk_buff *skb;
		bool copied = false;
		u16 status, len;

		if (!ioguard_desc_done(&r->desc[i], &status, &len))
			break;
		r->next_to_clean = ioguard_ring_next(r, i);
		done++;

		if (!(status & NIC_DESC_ST_DONE) || (status & NIC_DESC_ST_ERROR) ||
		    len < ETH_HLEN || len > IOGUARD_RX_BUF_LEN) {
			u32 code = status >> NIC_DESC_ST_ERR_SHIFT;

			errors++;
			/*
			 * A buffer the device may have half written goes
			 * back to the pool and another takes its slot. A
			 * frame that was too long never touched its buffer,
			 * which is posted again as it is.
			 */
			if (code != NIC_ERR_DESC_LEN) {
				if (ioguard_err_is_dma(code))
					atomic64_inc(&nic->dma_errors);
				ioguard_rx_free_slot(nic, slot);
			}
			continue;
		}

		skb = ioguard_rx_skb(nic, slot, len, &copied);
		if (!skb) {
			dropped++;      /* the page stays in its slot */
			continue;
		}
		copies += copied;
		skb->protocol = eth_type_trans(skb, nic->netdev);
		packets++;
		bytes += len;
		napi_gro_receive(&nic->napi, skb);
	}

	u64_stats_update_begin(&nic->nstats.syncp);
	u64_stats_add(&nic->nstats.rx_packets, packets);
	u64_stats_add(&nic->nstats.rx_bytes, bytes);
	u64_stats_add(&nic->nstats.rx_errors, errors);
	u64_stats_add(&nic->nstats.rx_dropped, dropped);
	u64_stats_add(&nic->nstats.rx_copied, copies);
	u64_stats_update_end(&nic->nstats.syncp);

	/*
	 * Out of memory with nothing posted, the device has nowhere to put a
	 * frame and will not interrupt us again: try later from a timer.
	 */
	if (!ioguard_rx_refill(nic, GFP_ATOMIC) &&
	    r->next_to_clean == r->next_to_use)
		mod_timer(&nic->refill_timer, jiffies + HZ / 10);
	return done;
}

static void ioguard_refill_timer(struct timer_list *t)
{
	struct ioguard_nic *nic = from_timer(nic, t, refill_timer);

	napi_schedule(&nic->napi);
}

static int ioguard_poll(struct napi_struct *napi, int budget)
{
	struct ioguard_nic *nic = container_of(napi, struct ioguard_nic, napi);
	int done;

	/*
	 * Acknowledge before looking at the rings: a completion after this
	 * sets the cause again and fires when we unmask.
	 */
	ioguard_wr(nic, NIC_REG_INT_STATUS, IOGUARD_INT_NAPI);
	ioguard_tx_clean(nic, budget);
	done = ioguard_rx_poll(nic, budget);
	if (done < budget && napi_complete_done(napi, done))
		ioguard_irq_update(nic, 0, IOGUARD_INT_NAPI);
	return done;
}

/* Interrupts and errors */

static void ioguard_update_link(struct ioguard_nic *nic)
{
	bool up = ioguard_rd(nic, NIC_REG_STATUS) & NIC_STATUS_LINK_UP;

	if (up == netif_carrier_ok(nic->netdev))
		return;
	if (up)
		netif_carrier_on(nic->netdev);
	else
		netif_carrier_off(nic->netdev);
	netdev_info(nic->netdev, "link %s\n", up ? "up" : "down");
}

/*
 * Take the latched error out of the device and clear it at once, so that
 * the next one is latched too; err_work logs it and recovers.
 */
static void ioguard_capture_error(struct ioguard_nic *nic)
{
	u32 status = ioguard_rd(nic, NIC_REG_STATUS);

	if (status & NIC_STATUS_ERROR) {
		u32 code = ioguard_rd(nic, NIC_REG_ERR_CODE);
		u32 addr = ioguard_rd(nic, NIC_REG_ERR_ADDR);

		ioguard_wr(nic, NIC_REG_STATUS, NIC_STATUS_ERROR);
		if (code == NIC_ERR_TE_ARGS || code == NIC_ERR_TE_DMA ||
		    code == NIC_ERR_TE_PAGE)
			WRITE_ONCE(nic->te_err_code, code);
		spin_lock(&nic->err_lock);
		if (nic->errq_len < IOGUARD_ERRQ_LEN)
			nic->errq[nic->errq_len++] =
				(struct ioguard_err_record){ code, addr };
		else
			nic->errq_lost++;
		spin_unlock(&nic->err_lock);
	}
	schedule_work(&nic->err_work);
}

static irqreturn_t ioguard_interrupt(int irq, void *data)
{
	struct ioguard_nic *nic = data;
	u32 pending;

	spin_lock(&nic->reg_lock);
	pending = ioguard_rd(nic, NIC_REG_INT_STATUS) & nic->int_mask;
	if (!pending) {
		spin_unlock(&nic->reg_lock);
		return IRQ_NONE;        /* a shared INTx line: not ours */
	}
	ioguard_wr(nic, NIC_REG_INT_STATUS, pending);
	if (pending & IOGUARD_INT_NAPI) {
		/* NAPI polls with these masked, and unmasks when done. */
		nic->int_mask &= ~IOGUARD_INT_NAPI;
		ioguard_wr(nic, NIC_REG_INT_MASK, nic->int_mask);
	}
	spin_unlock(&nic->reg_lock);

	/* Before TEST_DONE: the test engine's waiter wants the error code. */
	if (pending & NIC_INT_ERROR)
		ioguard_capture_error(nic);
	if (pending & NIC_INT_LINK)
		ioguard_update_link(nic);
	if (pending & NIC_INT_TEST_DONE)
		complete(&nic->te_done);
	if (pending & IOGUARD_INT_NAPI)
		napi_schedule(&nic->napi);
	return IRQ_HANDLED;
}

static int ioguard_datapath_start(struct ioguard_nic *nic);
static void ioguard_datapath_stop(struct ioguard_nic *nic);

/*
 * Reset the device and bring back what was running. Under rtnl (against
 * open/stop) and te_lock (the test engine is reset too).
 */
void ioguard_reset(struct ioguard_nic *nic, const char *why)
{
	bool running = nic->rings_up;

	ASSERT_RTNL();
	lockdep_assert_held(&nic->te_lock);
	atomic64_inc(&nic->resets);
	netdev_warn(nic->netdev, "resetting the device: %s\n", why);
	if (running)
		ioguard_datapath_stop(nic);
	ioguard_hw_reset(nic);
	if (running && ioguard_datapath_start(nic))
		netdev_err(nic->netdev, "cannot restart after the reset\n");
}

static void ioguard_err_work(struct work_struct *work)
{
	struct ioguard_nic *nic = container_of(work, struct ioguard_nic,
					       err_work);
	struct ioguard_err_record errs[IOGUARD_ERRQ_LEN];
	unsigned int n, lost, k;
	bool reset;
	u32 want = NIC_STATUS_TX_RUNNING | NIC_STATUS_RX_RUNNING;

	spin_lock_irq(&nic->err_lock);
	n = nic->errq_len;
	lost = nic->errq_lost;
	memcpy(errs, nic->errq, n * sizeof(errs[0]));
	nic->errq_len = 0;
	nic->errq_lost = 0;
	reset = nic->reset_requested;
	nic->reset_requested = false;
	spin_unlock_irq(&nic->err_lock);

	for (k = 0; k < n; k++) {
		atomic64_inc(&nic->error_events);
		if (__ratelimit(&nic->err_rs))
			netdev_err(nic->netdev, "%s error: %s at 0x%08x\n",
				   ioguard_err_is_dma(errs[k].code) ? "DMA"
								    : "device",
				   ioguard_err_name(errs[k].code), errs[k].addr);
	}
	if (lost)
		netdev_err(nic->netdev, "%u more device errors not recorded\n",
			   lost);

	/* Cheap check first: most errors leave both rings running. */
	if (!reset && (!READ_ONCE(nic->rings_up) ||
		       (ioguard_rd(nic, NIC_REG_STATUS) & want) == want))
		return;

	mutex_lock(&nic->te_lock);
	rtnl_lock();
	if (nic->rings_up) {
		u32 status = ioguard_rd(nic, NIC_REG_STATUS);

		if ((status & want) != want) {
			/* the device could not reach its own descriptors */
			atomic64_inc(&nic->dma_errors);
			ioguard_reset(nic, !(status & NIC_STATUS_TX_RUNNING) ?
					   "the TX ring stopped" :
					   "the RX ring stopped");
		} else if (reset) {
			ioguard_reset(nic, "TX timeout");
		}
	}
	rtnl_unlock();
	mutex_unlock(&nic->te_lock);
}

/* Rings */

static void ioguard_free_buffers(struct ioguard_nic *nic)
{
	unsigned int i;

	for (i = 0; i < nic->tx.size; i++) {
		struct ioguard_tx_slot *slot = &nic->tx_slots[i];

		ioguard_tx_unmap(nic, i);
		if (slot->skb) {
			dev_kfree_skb_any(slot->skb);
			slot->skb = NULL;
			u64_stats_update_begin(&nic->xstats.syncp);
			u64_stats_inc(&nic->xstats.tx_dropped);
			u64_stats_update_end(&nic->xstats.syncp);
		}
	}
	for (i = 0; i < nic->rx.size; i++)
		if (nic->rx_slots[i].page)
			ioguard_rx_free_slot(nic, &nic->rx_slots[i]);
	netdev_reset_queue(nic->netdev);
}

static void ioguard_program_ring(struct ioguard_nic *nic,
				 struct ioguard_ring *r, u32 base_reg)
{
	r->next_to_use = 0;
	r->next_to_clean = 0;
	memset(r->desc, 0, r->size * NIC_DESC_SIZE);
	/* SIZE first: it resets the device's HEAD and TAIL. */
	ioguard_wr(nic, base_reg + (NIC_REG_TX_RING_SIZE - NIC_REG_TX_RING_BASE),
		   r->size);
	ioguard_wr(nic, base_reg, lower_32_bits(r->desc_dma));
}

/* Program the rings, post RX buffers and start the device. Under rtnl. */
static int ioguard_datapath_start(struct ioguard_nic *nic)
{
	u32 status, want = NIC_STATUS_TX_RUNNING | NIC_STATUS_RX_RUNNING;

	int err = ioguard_rx_pool_create(nic);

	if (err)
		return err;
	ioguard_program_ring(nic, &nic->tx, NIC_REG_TX_RING_BASE);
	ioguard_program_ring(nic, &nic->rx, NIC_REG_RX_RING_BASE);
	if (!ioguard_rx_refill(nic, GFP_KERNEL) && !nic->rx.next_to_use) {
		ioguard_free_buffers(nic);
		ioguard_rx_pool_destroy(nic);
		return -ENOMEM;
	}
	ioguard_ctrl_update(nic, 0, NIC_CTRL_TX_EN | NIC_CTRL_RX_EN);
	status = ioguard_rd(nic, NIC_REG_STATUS);
	if ((status & want) != want) {
		netdev_err(nic->netdev, "the device refused the rings (STATUS 0x%08x)\n",
			   status);
		ioguard_ctrl_update(nic, NIC_CTRL_TX_EN | NIC_CTRL_RX_EN, 0);
		ioguard_free_buffers(nic);
		ioguard_rx_pool_destroy(nic);
		return -EIO;
	}
	WRITE_ONCE(nic->rings_up, true);
	napi_enable(&nic->napi);
	ioguard_irq_update(nic, 0, IOGUARD_INT_NAPI);
	netif_wake_queue(nic->netdev);
	return 0;
}

/* Quiesce the device's rings and take all buffers back. Under rtnl. */
static void ioguard_datapath_stop(struct ioguard_nic *nic)
{
	netif_tx_disable(nic->netdev);
	/* The device touches neither ring once TX_EN/RX_EN are clear. */
	ioguard_ctrl_update(nic, NIC_CTRL_TX_EN | NIC_CTRL_RX_EN, 0);
	ioguard_irq_update(nic, IOGUARD_INT_NAPI, 0);
	ioguard_rd(nic, NIC_REG_STATUS);        /* flush the posted writes */
	napi_disable(&nic->napi);
	/*
	 * A poll that ran until napi_disable() may have woken the queue on
	 * the completions it found: stop it again, for good this time, before
	 * the rings go away (a TX doorbell now would hit a ring being reset).
	 */
	netif_tx_disable(nic->netdev);
	timer_delete_sync(&nic->refill_timer);
	WRITE_ONCE(nic->rings_up, false);
	ioguard_free_buffers(nic);
	ioguard_rx_pool_destroy(nic);
}

static void ioguard_free_rings(struct ioguard_nic *nic)
{
	unsigned int i;

	if (nic->tx.desc)
		dma_free_coherent(nic->dev, nic->tx.size * NIC_DESC_SIZE,
				  nic->tx.desc, nic->tx.desc_dma);
	if (nic->rx.desc)
		dma_free_coherent(nic->dev, nic->rx.size * NIC_DESC_SIZE,
				  nic->rx.desc, nic->rx.desc_dma);
	for (i = 0; nic->tx_slots && i < nic->tx.size; i++)
		if (nic->tx_slots[i].copy)
			dma_pool_free(nic->tx_copy_pool, nic->tx_slots[i].copy,
				      nic->tx_slots[i].copy_dma);
	dma_pool_destroy(nic->tx_copy_pool);
	nic->tx.desc = NULL;
	nic->rx.desc = NULL;
	nic->tx_copy_pool = NULL;
	kvfree(nic->tx_slots);
	kvfree(nic->tx_sg);
	kvfree(nic->rx_slots);
	nic->tx_slots = NULL;
	nic->tx_sg = NULL;
	nic->rx_slots = NULL;
}

static int ioguard_alloc_rings(struct ioguard_nic *nic)
{
	unsigned int i = 0;

	nic->tx.size = clamp_t(unsigned int, tx_ring, IOGUARD_MIN_RING,
			       NIC_RING_MAX_SIZE);
	nic->rx.size = clamp_t(unsigned int, rx_ring, IOGUARD_MIN_RING,
			       NIC_RING_MAX_SIZE);
	/* The 32-bit coherent mask keeps the rings where the device reaches. */
	nic->tx.desc = dma_alloc_coherent(nic->dev, nic->tx.size * NIC_DESC_SIZE,
					  &nic->tx.desc_dma, GFP_KERNEL);
	nic->rx.desc = dma_alloc_coherent(nic->dev, nic->rx.size * NIC_DESC_SIZE,
					  &nic->rx.desc_dma, GFP_KERNEL);
	/* Aligned to their size, so that no copy buffer crosses a page. */
	nic->tx_copy_pool = dma_pool_create(DRV_NAME "_tx_copy", nic->dev,
					    IOGUARD_TX_COPY_LEN,
					    IOGUARD_TX_COPY_LEN, 0);
	nic->tx_slots = kvcalloc(nic->tx.size, sizeof(*nic->tx_slots),
				 GFP_KERNEL);
	for (i = 0; nic->tx_copy_pool && nic->tx_slots && i < nic->tx.size;
	     i++) {
		struct ioguard_tx_slot *slot = &nic->tx_slots[i];

		slot->copy = dma_pool_alloc(nic->tx_copy_pool, GFP_KERNEL,
					    &slot->copy_dma);
		if (!slot->copy)
			break;
	}
	nic->rx_slots = kvcalloc(nic->rx.size, sizeof(*nic->rx_slots),
				 GFP_KERNEL);
	if (!nic->has_sg)
		nic->tx_sg = kvcalloc(nic->tx.size * IOGUARD_TX_SG_MAX,
				      sizeof(*nic->tx_sg), GFP_KERNEL);
	if (!nic->tx.desc || !nic->rx.desc || !nic->tx_slots ||
	    i < nic->tx.size || !nic->rx_slots || (!nic->has_sg && !nic->tx_sg)) {
		ioguard_free_rings(nic);
		return -ENOMEM;
	}
	return 0;
}

/* net_device_ops */

static int ioguard_open(struct net_device *netdev)
{
	struct ioguard_nic *nic = netdev_priv(netdev);
	int err;

	err = ioguard_alloc_rings(nic);
	if (err)
		return err;
	err = ioguard_datapath_start(nic);
	if (err) {
		ioguard_free_rings(nic);
		return err;
	}
	ioguard_update_link(nic);
	return 0;
}

static int ioguard_stop(struct net_device *netdev)
{
	struct ioguard_nic *nic = netdev_priv(netdev);

	if (nic->rings_up)
		ioguard_datapath_stop(nic);
	ioguard_free_rings(nic);
	return 0;
}

static void ioguard_get_stats64(struct net_device *netdev,
				struct rtnl_link_stats64 *s)
{
	struct ioguard_nic *nic = netdev_priv(netdev);
	unsigned int start;

	do {
		start = u64_stats_fetch_begin(&nic->nstats.syncp);
		s->rx_packets = u64_stats_read(&nic->nstats.rx_packets);
		s->rx_bytes = u64_stats_read(&nic->nstats.rx_bytes);
		s->rx_errors = u64_stats_read(&nic->nstats.rx_errors);
		s->rx_dropped = u64_stats_read(&nic->nstats.rx_dropped);
		s->tx_packets = u64_stats_read(&nic->nstats.tx_packets);
		s->tx_bytes = u64_stats_read(&nic->nstats.tx_bytes);
		s->tx_errors = u64_stats_read(&nic->nstats.tx_errors);
	} while (u64_stats_fetch_retry(&nic->nstats.syncp, start));
	do {
		start = u64_stats_fetch_begin(&nic->xstats.syncp);
		s->tx_dropped = u64_stats_read(&nic->xstats.tx_dropped);
	} while (u64_stats_fetch_retry(&nic->xstats.syncp, start));
}

static int ioguard_change_mtu(struct net_device *netdev, int mtu)
{
	/* RX buffers are whole pages whatever the MTU: nothing to resize. */
	WRITE_ONCE(netdev->mtu, mtu);
	return 0;
}

static void ioguard_set_rx_mode(struct net_device *netdev)
{
	struct ioguard_nic *nic = netdev_priv(netdev);

	/* The device always takes multicast and broadcast. */
	if (netdev->flags & IFF_PROMISC)
		ioguard_ctrl_update(nic, 0, NIC_CTRL_PROMISC);
	else
		ioguard_ctrl_update(nic, NIC_CTRL_PROMISC, 0);
}

static int ioguard_set_features(struct net_device *netdev,
				netdev_features_t features)
{
	struct ioguard_nic *nic = netdev_priv(netdev);
	netdev_features_t changed = netdev->features ^ features;

	if (changed & NETIF_F_LOOPBACK) {
		if (features & NETIF_F_LOOPBACK)
			ioguard_ctrl_update(nic, 0, NIC_CTRL_LOOPBACK);
		else
			ioguard_ctrl_update(nic, NIC_CTRL_LOOPBACK, 0);
		netdev_info(netdev, "internal loopback %s\n",
			    features & NETIF_F_LOOPBACK ? "on" : "off");
	}
	return 0;
}

static void ioguard_tx_timeout(struct net_device *netdev, unsigned int queue)
{
	struct ioguard_nic *nic = netdev_priv(netdev);
	unsigned long flags;

	netdev_err(netdev, "TX timeout: HEAD %u TAIL %u STATUS 0x%08x\n",
		   ioguard_rd(nic, NIC_REG_TX_HEAD),
		   ioguard_rd(nic, NIC_REG_TX_TAIL),
		   ioguard_rd(nic, NIC_REG_STATUS));
	spin_lock_irqsave(&nic->err_lock, flags);
	nic->reset_requested = true;
	spin_unlock_irqrestore(&nic->err_lock, flags);
	schedule_work(&nic->err_work);
}

static const struct net_device_ops ioguard_netdev_ops = {
	.ndo_open = ioguard_open,
	.ndo_stop = ioguard_stop,
	.ndo_start_xmit = ioguard_start_xmit,
	.ndo_get_stats64 = ioguard_get_stats64,
	.ndo_change_mtu = ioguard_change_mtu,
	.ndo_set_rx_mode = ioguard_set_rx_mode,
	.ndo_set_features = ioguard_set_features,
	.ndo_tx_timeout = ioguard_tx_timeout,
	.ndo_validate_addr = eth_validate_addr,
};

/*
 * ethtool statistics
 *
 * tx_/rx_packets, _bytes  frames the device sent / delivered to the stack
 * tx_/rx_errors           frames the device completed with ST_ERROR
 * tx_dropped              skbs dropped by the driver (no mapping, too long,
 *                         in flight at a reset)
 * rx_dropped              frames lost for want of an skb
 * tx_copied               frames sent from the premapped copy buffer
 *                         (<= tx-copybreak bytes)
 * rx_copied               frames copied out of their page (<= 256 bytes)
 * dma_errors              DMA failures the device reported to the driver:
 *                         packets and frames completed with tx-dma/rx-dma,
 *                         test-engine commands ended by te-dma, and rings
 *                         the device stopped
 * error_events            error reports (ERR_CODE/ERR_ADDR) taken and logged
 * device_*                the device's own counters, extended to 64 bits
 * tx_sg_merged            skbs of several pieces sent as one descriptor
 *                         because the IOMMU mapped them as one range
 *                         (devices without CAP.SG)
 * tx_linearized           skbs copied into one buffer (too many pieces, or
 *                         no CAP.SG and no merge)
 * buffers_above_4g        packet buffers handed to the device (RX pages as
 *                         posted, TX pieces as mapped) whose CPU physical
 *                         address is at or above 4 GiB
 * resets                  device resets by the recovery path
 */

enum ioguard_stat {
	ST_TX_PACKETS, ST_TX_BYTES, ST_RX_PACKETS, ST_RX_BYTES,
	ST_TX_ERRORS, ST_RX_ERRORS, ST_TX_DROPPED, ST_RX_DROPPED, ST_TX_COPIED,
	ST_RX_COPIED,
	ST_DMA_ERRORS, ST_ERROR_EVENTS,
	ST_DEV_TX_PACKETS, ST_DEV_RX_PACKETS, ST_DEV_RX_DROPPED,
	ST_DEV_DMA_ERRORS,
	ST_TX_SG_MERGED, ST_TX_LINEARIZED, ST_BUFFERS_ABOVE_4G, ST_RESETS,
	ST_COUNT,
};

static const char ioguard_stat_names[ST_COUNT][ETH_GSTRING_LEN] = {
	[ST_TX_PACKETS] = "tx_packets",
	[ST_TX_BYTES] = "tx_bytes",
	[ST_RX_PACKETS] = "rx_packets",
	[ST_RX_BYTES] = "rx_bytes",
	[ST_TX_ERRORS] = "tx_errors",
	[ST_RX_ERRORS] = "rx_errors",
	[ST_TX_DROPPED] = "tx_dropped",
	[ST_RX_DROPPED] = "rx_dropped",
	[ST_TX_COPIED] = "tx_copied",
	[ST_RX_COPIED] = "rx_copied",
	[ST_DMA_ERRORS] = "dma_errors",
	[ST_ERROR_EVENTS] = "error_events",
	[ST_DEV_TX_PACKETS] = "device_tx_packets",
	[ST_DEV_RX_PACKETS] = "device_rx_packets",
	[ST_DEV_RX_DROPPED] = "device_rx_dropped",
	[ST_DEV_DMA_ERRORS] = "device_dma_errors",
	[ST_TX_SG_MERGED] = "tx_sg_merged",
	[ST_TX_LINEARIZED] = "tx_linearized",
	[ST_BUFFERS_ABOVE_4G] = "buffers_above_4g",
	[ST_RESETS] = "resets",
};

static void ioguard_get_drvinfo(struct net_device *netdev,
				struct ethtool_drvinfo *info)
{
	struct ioguard_nic *nic = netdev_priv(netdev);

	strscpy(info->driver, DRV_NAME, sizeof(info->driver));
	strscpy(info->bus_info, pci_name(nic->pdev), sizeof(info->bus_info));
	snprintf(info->fw_version, sizeof(info->fw_version), "id %08x cap %08x",
		 IOGUARD_NIC_ID, nic->cap);
}

static int ioguard_get_sset_count(struct net_device *netdev, int sset)
{
	return sset == ETH_SS_STATS ? ST_COUNT : -EOPNOTSUPP;
}

static void ioguard_get_strings(struct net_device *netdev, u32 sset, u8 *data)
{
	if (sset == ETH_SS_STATS)
		memcpy(data, ioguard_stat_names, sizeof(ioguard_stat_names));
}

static void ioguard_get_ethtool_stats(struct net_device *netdev,
				      struct ethtool_stats *stats, u64 *data)
{
	struct ioguard_nic *nic = netdev_priv(netdev);
	u64 high_rx, high_tx;
	unsigned int start;

	do {
		start = u64_stats_fetch_begin(&nic->nstats.syncp);
		data[ST_TX_PACKETS] = u64_stats_read(&nic->nstats.tx_packets);
		data[ST_TX_BYTES] = u64_stats_read(&nic->nstats.tx_bytes);
		data[ST_TX_ERRORS] = u64_stats_read(&nic->nstats.tx_errors);
		data[ST_RX_PACKETS] = u64_stats_read(&nic->nstats.rx_packets);
		data[ST_RX_BYTES] = u64_stats_read(&nic->nstats.rx_bytes);
		data[ST_RX_ERRORS] = u64_stats_read(&nic->nstats.rx_errors);
		data[ST_RX_DROPPED] = u64_stats_read(&nic->nstats.rx_dropped);
		data[ST_RX_COPIED] = u64_stats_read(&nic->nstats.rx_copied);
		high_rx = u64_stats_read(&nic->nstats.above_4g);
	} while (u64_stats_fetch_retry(&nic->nstats.syncp, start));
	do {
		start = u64_stats_fetch_begin(&nic->xstats.syncp);
		data[ST_TX_DROPPED] = u64_stats_read(&nic->xstats.tx_dropped);
		data[ST_TX_COPIED] = u64_stats_read(&nic->xstats.tx_copied);
		data[ST_TX_SG_MERGED] = u64_stats_read(&nic->xstats.sg_merged);
		data[ST_TX_LINEARIZED] = u64_stats_read(&nic->xstats.linearized);
		high_tx = u64_stats_read(&nic->xstats.above_4g);
	} while (u64_stats_fetch_retry(&nic->xstats.syncp, start));
	data[ST_BUFFERS_ABOVE_4G] = high_rx + high_tx;
	data[ST_DMA_ERRORS] = atomic64_read(&nic->dma_errors);
	data[ST_ERROR_EVENTS] = atomic64_read(&nic->error_events);
	data[ST_RESETS] = atomic64_read(&nic->resets);

	ioguard_devctr_fold(nic, false);
	spin_lock_irq(&nic->devctr_lock);
	data[ST_DEV_TX_PACKETS] = nic->devctr_total[IOGUARD_DEV_TX_PACKETS];
	data[ST_DEV_RX_PACKETS] = nic->devctr_total[IOGUARD_DEV_RX_PACKETS];
	data[ST_DEV_RX_DROPPED] = nic->devctr_total[IOGUARD_DEV_RX_DROPPED];
	data[ST_DEV_DMA_ERRORS] = nic->devctr_total[IOGUARD_DEV_DMA_ERRORS];
	spin_unlock_irq(&nic->devctr_lock);
}

static void ioguard_get_ringparam(struct net_device *netdev,
				  struct ethtool_ringparam *ring,
				  struct kernel_ethtool_ringparam *kring,
				  struct netlink_ext_ack *extack)
{
	/* One slot of each ring always stays unused. */
	ring->rx_max_pending = NIC_RING_MAX_SIZE - 1;
	ring->tx_max_pending = NIC_RING_MAX_SIZE - 1;
	ring->rx_pending = clamp_t(unsigned int, rx_ring, IOGUARD_MIN_RING,
				   NIC_RING_MAX_SIZE) - 1;
	ring->tx_pending = clamp_t(unsigned int, tx_ring, IOGUARD_MIN_RING,
				   NIC_RING_MAX_SIZE) - 1;
}

static int ioguard_get_tunable(struct net_device *netdev,
			      const struct ethtool_tunable *tuna, void *data)
{
	struct ioguard_nic *nic = netdev_priv(netdev);

	if (tuna->id != ETHTOOL_TX_COPYBREAK)
		return -EOPNOTSUPP;
	*(u32 *)data = READ_ONCE(nic->tx_copybreak);
	return 0;
}

static int ioguard_set_tunable(struct net_device *netdev,
			      const struct ethtool_tunable *tuna,
			      const void *data)
{
	struct ioguard_nic *nic = netdev_priv(netdev);
	u32 copybreak = *(const u32 *)data;

	if (tuna->id != ETHTOOL_TX_COPYBREAK)
		return -EOPNOTSUPP;
	if (copybreak > IOGUARD_TX_COPY_LEN) {
		netdev_err(netdev, "tx-copybreak %u: at most %u\n", copybreak,
			   IOGUARD_TX_COPY_LEN);
		return -EINVAL;
	}
	/* ndo_start_xmit reads it once per frame: no lock needed. */
	WRITE_ONCE(nic->tx_copybreak, copybreak);
	return 0;
}

static const struct ethtool_ops ioguard_ethtool_ops = {
	.get_drvinfo = ioguard_get_drvinfo,
	.get_link = ethtool_op_get_link,
	.get_sset_count = ioguard_get_sset_count,
	.get_strings = ioguard_get_strings,
	.get_ethtool_stats = ioguard_get_ethtool_stats,
	.get_ringparam = ioguard_get_ringparam,
	.get_tunable = ioguard_get_tunable,
	.set_tunable = ioguard_set_tunable,
};

/* PCI */

static int ioguard_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct net_device *netdev;
	struct ioguard_nic *nic;
	u32 ident, lo, hi;
	u8 mac[ETH_ALEN];
	int err;

	err = pci_enable_device_mem(pdev);
	if (err)
		return err;
	err = pci_request_mem_regions(pdev, DRV_NAME);
	if (err)
		goto err_disable;
	/* A 32-bit bus master: above 4 GiB only through an IOMMU. */
	err = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(32));
	if (err) {
		dev_err(&pdev->dev, "no usable 32-bit DMA\n");
		goto err_release;
	}
	/*
	 * The largest single DMA the device takes is the test engine's; a TX
	 * segment is bounded by the frame length anyway. A smaller limit
	 * would keep the IOMMU from merging a scatterlist into one segment.
	 */
	dma_set_max_seg_size(&pdev->dev, NIC_TE_MAX_LEN);
	pci_set_master(pdev);

	netdev = alloc_etherdev(sizeof(*nic));
	if (!netdev) {
		err = -ENOMEM;
		goto err_release;
	}
	SET_NETDEV_DEV(netdev, &pdev->dev);
	nic = netdev_priv(netdev);
	nic->netdev = netdev;
	nic->pdev = pdev;
	nic->dev = &pdev->dev;
	pci_set_drvdata(pdev, nic);
	spin_lock_init(&nic->reg_lock);
	spin_lock_init(&nic->err_lock);
	spin_lock_init(&nic->devctr_lock);
	mutex_init(&nic->te_lock);
	init_completion(&nic->te_done);
	INIT_WORK(&nic->err_work, ioguard_err_work);
	ratelimit_state_init(&nic->err_rs, 5 * HZ, 20);
	timer_setup(&nic->refill_timer, ioguard_refill_timer, 0);
	u64_stats_init(&nic->nstats.syncp);
	u64_stats_init(&nic->xstats.syncp);
	snprintf(nic->te_result, sizeof(nic->te_result), "none");

	nic->regs = pci_iomap(pdev, IOGUARD_NIC_BAR, IOGUARD_NIC_MMIO_SIZE);
	if (!nic->regs) {
		err = -ENOMEM;
		goto err_free_netdev;
	}
	ident = ioguard_rd(nic, NIC_REG_ID);
	if (ident != IOGUARD_NIC_ID) {
		dev_err(&pdev->dev, "unknown device: ID 0x%08x, want 0x%08x\n",
			ident, IOGUARD_NIC_ID);
		err = -ENODEV;
		goto err_unmap;
	}
	nic->cap = ioguard_rd(nic, NIC_REG_CAP);
	nic->has_sg = nic->cap & NIC_CAP_SG;
	nic->max_frags = (nic->cap & NIC_CAP_MAX_FRAGS_MASK) >>
			 NIC_CAP_MAX_FRAGS_SHIFT;
	nic->max_frags = clamp_t(unsigned int, nic->max_frags, 1,
				 NIC_MAX_FRAGS);
	if (!nic->has_sg)
		nic->max_frags = 1;
	ioguard_hw_reset(nic);

	lo = ioguard_rd(nic, NIC_REG_MAC_LO);
	hi = ioguard_rd(nic, NIC_REG_MAC_HI);
	mac[0] = lo;
	mac[1] = lo >> 8;
	mac[2] = lo >> 16;
	mac[3] = lo >> 24;
	mac[4] = hi;
	mac[5] = hi >> 8;
	if (is_valid_ether_addr(mac)) {
		eth_hw_addr_set(netdev, mac);
	} else {
		dev_warn(&pdev->dev, "invalid MAC %pM, using a random one\n",
			 mac);
		eth_hw_addr_random(netdev);
	}

	netdev->netdev_ops = &ioguard_netdev_ops;
	netdev->ethtool_ops = &ioguard_ethtool_ops;
	nic->tx_copybreak = min_t(unsigned int, tx_copybreak,
				  IOGUARD_TX_COPY_LEN);
	netdev->watchdog_timeo = 5 * HZ;
	netdev->min_mtu = IOGUARD_MIN_MTU;
	netdev->max_mtu = IOGUARD_MAX_MTU;
	netdev->features = NETIF_F_SG | NETIF_F_HIGHDMA;
	netdev->hw_features = NETIF_F_SG;
	if (nic->cap & NIC_CAP_LOOPBACK)
		netdev->hw_features |= NETIF_F_LOOPBACK;
	netif_napi_add(netdev, &nic->napi, ioguard_poll);

	err = pci_alloc_irq_vectors(pdev, 1, 1, use_msi ?
				    PCI_IRQ_MSI | PCI_IRQ_INTX : PCI_IRQ_INTX);
	if (err < 0)
		goto err_napi;
	err = request_irq(pci_irq_vector(pdev, 0), ioguard_interrupt,
			  pdev->msi_enabled ? 0 : IRQF_SHARED, DRV_NAME, nic);
	if (err)
		goto err_vectors;
	/* Errors and the test engine work whether or not the link is up. */
	ioguard_irq_update(nic, 0, IOGUARD_INT_ALWAYS);

	netif_carrier_off(netdev);
	err = register_netdev(netdev);
	if (err)
		goto err_irq;

	if (nic->cap & NIC_CAP_TEST_ENGINE) {
		nic->debugfs = debugfs_create_dir(pci_name(pdev),
						  ioguard_debugfs_root);
		debugfs_create_file("dma_test", 0600, nic->debugfs, nic,
				    &ioguard_dma_test_fops);
		ioguard_sva_enable(nic);
	}

	netdev_info(netdev, "ioguard-nic at %s: MAC %pM, %s, %s, rings %u/%u\n",
		    pci_name(pdev), netdev->dev_addr,
		    pdev->msi_enabled ? "MSI" : "INTx",
		    nic->has_sg ? "scatter/gather" : "no scatter/gather",
		    clamp_t(unsigned int, tx_ring, IOGUARD_MIN_RING, NIC_RING_MAX_SIZE),
		    clamp_t(unsigned int, rx_ring, IOGUARD_MIN_RING, NIC_RING_MAX_SIZE));
	return 0;

err_irq:
	ioguard_irq_update(nic, ~0u, 0);
	free_irq(pci_irq_vector(pdev, 0), nic);
	cancel_work_sync(&nic->err_work);
err_vectors:
	pci_free_irq_vectors(pdev);
err_napi:
	netif_napi_del(&nic->napi);
	ioguard_wr(nic, NIC_REG_CTRL, NIC_CTRL_RESET);
err_unmap:
	pci_iounmap(pdev, nic->regs);
err_free_netdev:
	free_netdev(netdev);
err_release:
	pci_release_mem_regions(pdev);
err_disable:
	pci_disable_device(pdev);
	return err;
}

static void ioguard_remove(struct pci_dev *pdev)
{
	struct ioguard_nic *nic = pci_get_drvdata(pdev);

	/* Waits for a test-engine command in progress. */
	debugfs_remove_recursive(nic->debugfs);
	ioguard_sva_disable(nic);
	unregister_netdev(nic->netdev);
	ioguard_irq_update(nic, ~0u, 0);
	free_irq(pci_irq_vector(pdev, 0), nic);
	cancel_work_sync(&nic->err_work);
	ioguard_wr(nic, NIC_REG_CTRL, NIC_CTRL_RESET);
	pci_free_irq_vectors(pdev);
	netif_napi_del(&nic->napi);
	pci_iounmap(pdev, nic->regs);
	pci_release_mem_regions(pdev);
	pci_clear_master(pdev);
	pci_disable_device(pdev);
	free_netdev(nic->netdev);
}

static const struct pci_device_id ioguard_pci_ids[] = {
	{ PCI_DEVICE(IOGUARD_NIC_PCI_VENDOR_ID, IOGUARD_NIC_PCI_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, ioguard_pci_ids);

static struct pci_driver ioguard_pci_driver = {
	.name = DRV_NAME,
	.id_table = ioguard_pci_ids,
	.probe = ioguard_probe,
	.remove = ioguard_remove,
};

static int __init ioguard_init(void)
{
	int err;

	ioguard_debugfs_root = debugfs_create_dir(DRV_NAME, NULL);
	err = pci_register_driver(&ioguard_pci_driver);
	if (err)
		debugfs_remove_recursive(ioguard_debugfs_root);
	return err;
}

static void __exit ioguard_exit(void)
{
	pci_unregister_driver(&ioguard_pci_driver);
	debugfs_remove_recursive(ioguard_debugfs_root);
}

module_init(ioguard_init);
module_exit(ioguard_exit);

MODULE_DESCRIPTION("ioguard-nic: ioguard's 32-bit bus-master NIC");
MODULE_AUTHOR("The ioguard project");
MODULE_LICENSE("GPL");
