/*
 * ioguard-nic: a 32-bit bus-master NIC that exercises an IOMMU.
 *
 * Descriptor rings in the driver's memory (the layout and registers are in
 * include/hw/ioguard/nic-regs.h), a TX ring whose packets may span several
 * fragments, an RX ring of receive buffers, internal loopback, and a test
 * engine that DMAs wherever software asks. Every address the device is given
 * is 32 bits wide; above 4 GiB it relies on the IOMMU. The test engine is
 * in nic-test-engine.c; the state the two files share is in nic-internal.h.
 *
 * Every DMA reports its outcome. A refused DMA stops that operation, records
 * the failing address, raises the error interrupt, and the device never uses
 * data it did not get. All guest-controlled work (rings, chains, test engine)
 * runs in bottom halves with a fixed budget, guarded against re-entrancy, so
 * nothing a guest writes can loop forever or recurse into our registers.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/msi.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "hw/ioguard/fault-device.h"
#include "net/net.h"
#include "net/eth.h"
#include "hw/ioguard/nic-regs.h"
#include "nic-internal.h"
#include "trace.h"

/* Descriptors one bottom-half run may consume before yielding the loop. */
#define NIC_BH_BUDGET 256

static const char *const nic_err_names[] = NIC_ERR_NAMES;

static void nic_link_fault(IoguardNicState *s);

/* Interrupts */

static void nic_update_intx(IoguardNicState *s)
{
    if (!msi_enabled(PCI_DEVICE(s))) {
        pci_set_irq(PCI_DEVICE(s), !!(s->int_status & s->int_mask));
    }
}

void nic_raise(IoguardNicState *s, uint32_t causes)
{
    uint32_t fresh = causes & ~s->int_status;

    s->int_status |= causes;
    if (msi_enabled(PCI_DEVICE(s))) {
        if (fresh & s->int_mask) {
            msi_notify(PCI_DEVICE(s), 0);
        }
    } else {
        nic_update_intx(s);
    }
}

/*
 * Record a device error: the first one since the driver last cleared
 * STATUS.ERROR stays in ERR_CODE/ERR_ADDR.
 */
void nic_error(IoguardNicState *s, uint32_t code, uint32_t addr)
{
    trace_ioguard_nic_error(nic_err_names[code], addr);
    if (!(s->status & NIC_STATUS_ERROR)) {
        s->status |= NIC_STATUS_ERROR;
        s->err_code = code;
        s->err_addr = addr;
    }
    if (code == NIC_ERR_TX_DMA || code == NIC_ERR_RX_DMA ||
        code == NIC_ERR_TE_DMA) {
        s->dma_errors++;
    }
    nic_raise(s, NIC_INT_ERROR);
}

/* A mistake in what the guest programmed: architected error plus a log line. */
void nic_guest_error(IoguardNicState *s, uint32_t code, uint32_t addr,
                     const char *what)
{
    qemu_log_mask(LOG_GUEST_ERROR, "ioguard-nic: %s (%s, address 0x%08x)\n",
                  what, nic_err_names[code], addr);
    nic_error(s, code, addr);
}

/*
 * DMA
 *
 * In chunks that never cross a 4 KiB boundary. On failure *fail_addr is the
 * first byte of the refused chunk; bytes before it were transferred.
 */

/* Whether a fault rule fails this DMA (site: descriptor or data). */
static bool nic_dma_fault(IoguardNicState *s, unsigned site, uint64_t addr,
                          DMADirection dir)
{
    return ioguard_fault_check(s->faults, site,
                               pci_requester_id(PCI_DEVICE(s)), addr,
                               dir == DMA_DIRECTION_FROM_DEVICE, NULL);
}

bool nic_dma(IoguardNicState *s, unsigned site, uint64_t addr,
             void *buf, uint32_t len, DMADirection dir,
             uint32_t *fail_addr)
{
    return nic_dma_pasid(s, site, addr, buf, len, dir, 0, fail_addr);
}

bool nic_dma_pasid(IoguardNicState *s, unsigned site, uint64_t addr,
                   void *buf, uint32_t len, DMADirection dir, uint32_t pasid,
                   uint32_t *fail_addr)
{
    uint8_t *p = buf;

    while (len) {
        uint32_t n = MIN(len, NIC_DMA_CHUNK - (addr & (NIC_DMA_CHUNK - 1)));
        MemTxResult r;

        if (addr + n > (1ULL << 32)) {      /* 32-bit bus master */
            *fail_addr = addr > UINT32_MAX ? 0 : addr;
            qemu_log_mask(LOG_GUEST_ERROR, "ioguard-nic: DMA beyond 4 GiB at "
                          "0x%08" PRIx64 ": a 32-bit bus master\n", addr);
            return false;
        }
        if (nic_dma_fault(s, site, addr, dir)) {
            *fail_addr = addr;      /* as if the IOMMU refused it */
            return false;
        }
        if ((pasid & NIC_TE_PASID_VALID) && !nic_ats_enabled(s)) {
            /* ATS turned off under a running operation: the address is a
             * process's, not one to send untranslated. */
            qemu_log_mask(LOG_GUEST_ERROR, "ioguard-nic: ATS turned off "
                          "under a DMA with a PASID\n");
            r = MEMTX_DECODE_ERROR;
        } else {
            r = nic_ats_enabled(s) ?
                nic_ats_dma(s, addr, p, n, dir, pasid) :
                pci_dma_rw(PCI_DEVICE(s), addr, p, n, dir,
                           MEMTXATTRS_UNSPECIFIED);
        }
        if (r != MEMTX_OK) {
            *fail_addr = addr;
            trace_ioguard_nic_dma_refused(dir == DMA_DIRECTION_FROM_DEVICE,
                                          addr, n);
            qemu_log_mask(LOG_GUEST_ERROR, "ioguard-nic: DMA %s of %u bytes "
                          "at 0x%08" PRIx64 " refused\n",
                          dir == DMA_DIRECTION_FROM_DEVICE ? "write" : "read",
                          n, addr);
            return false;
        }
        addr += n;
        p += n;
        len -= n;
    }
    return true;
}

static uint32_t nic_desc_addr(const NicRing *r, uint32_t index)
{
    return r->base + index * NIC_DESC_SIZE;
}

static bool nic_desc_read(IoguardNicState *s, const NicRing *r, uint32_t index,
                          struct ioguard_nic_desc *d, uint32_t *fail_addr)
{
    if (!nic_dma(s, IOGUARD_FAULT_SITE_NIC_DESC, nic_desc_addr(r, index), d,
                 sizeof(*d), DMA_DIRECTION_TO_DEVICE, fail_addr)) {
        return false;
    }
    d->addr = le32_to_cpu(d->addr);
    d->len = le16_to_cpu(d->len);
    d->flags = le16_to_cpu(d->flags);
    return true;
}

/*
 * Hand a descriptor back: status and length first, then flags without OWN,
 * so that a driver which sees OWN clear also sees the status.
 */
static bool nic_desc_complete(IoguardNicState *s, const NicRing *r,
                              uint32_t index, uint16_t flags, uint16_t status,
                              uint16_t written_len, uint32_t *fail_addr)
{
    uint32_t at = nic_desc_addr(r, index);
    uint16_t tail[2] = { cpu_to_le16(status), cpu_to_le16(written_len) };
    uint16_t f = cpu_to_le16(flags & ~NIC_DESC_OWN);

    if (!nic_dma(s, IOGUARD_FAULT_SITE_NIC_DESC, at + 8, tail, sizeof(tail),
                 DMA_DIRECTION_FROM_DEVICE, fail_addr)) {
        return false;
    }
    smp_wmb();
    return nic_dma(s, IOGUARD_FAULT_SITE_NIC_DESC, at + 6, &f, sizeof(f),
                   DMA_DIRECTION_FROM_DEVICE, fail_addr);
}

static uint16_t nic_desc_error(uint32_t code)
{
    return NIC_DESC_ST_DONE | NIC_DESC_ST_ERROR |
           (code << NIC_DESC_ST_ERR_SHIFT);
}

static uint32_t nic_ring_pending(const NicRing *r)
{
    return (r->tail + r->size - r->head) % r->size;
}

/* The device cannot reach its own ring: that ring stops until re-enabled. */
static void nic_ring_stop(IoguardNicState *s, NicRing *r, uint32_t code,
                          uint32_t addr)
{
    r->running = false;
    s->status &= ~(r == &s->tx ? NIC_STATUS_TX_RUNNING : NIC_STATUS_RX_RUNNING);
    nic_error(s, code, addr);
}

/* Receive */

static bool nic_frame_wanted(IoguardNicState *s, const uint8_t *buf,
                             size_t size)
{
    if ((s->ctrl & NIC_CTRL_PROMISC) || (buf[0] & 1)) {
        return true;        /* promiscuous, multicast or broadcast */
    }
    return !memcmp(buf, s->conf.macaddr.a, ETH_ALEN);
}

static bool nic_rx_has_buffer(IoguardNicState *s)
{
    return s->rx.running && nic_ring_pending(&s->rx) > 0;
}

/*
 * Put one frame in the next RX buffer. Returns false only when there is no
 * buffer yet (the caller keeps the frame); a frame that cannot be delivered
 * is dropped and counted.
 */
static bool nic_rx_frame(IoguardNicState *s, const uint8_t *buf, size_t size)
{
    NicRing *r = &s->rx;
    struct ioguard_nic_desc d;
    uint32_t fail, index = r->head;
    uint16_t status = NIC_DESC_ST_DONE;

    if (!nic_rx_has_buffer(s)) {
        return false;
    }
    if (!nic_desc_read(s, r, index, &d, &fail)) {
        nic_ring_stop(s, r, NIC_ERR_RX_DMA, fail);
        return true;
    }
    if (!(d.flags & NIC_DESC_OWN)) {
        return false;           /* posted by TAIL but not yet handed over */
    }
    if (d.len == 0) {
        nic_guest_error(s, NIC_ERR_DESC_LEN, nic_desc_addr(r, index),
                        "RX descriptor with a zero-length buffer");
        status = nic_desc_error(NIC_ERR_DESC_LEN);
    } else if (size > d.len) {
        status = nic_desc_error(NIC_ERR_DESC_LEN);   /* too long: dropped */
    } else if (!nic_dma(s, IOGUARD_FAULT_SITE_NIC_DMA, d.addr, (void *)buf,
                        size, DMA_DIRECTION_FROM_DEVICE, &fail)) {
        nic_error(s, NIC_ERR_RX_DMA, fail);
        status = nic_desc_error(NIC_ERR_RX_DMA);
    }
    if (!nic_desc_complete(s, r, index, NIC_DESC_EOP, status,
                           status == NIC_DESC_ST_DONE ? size : 0, &fail)) {
        nic_ring_stop(s, r, NIC_ERR_RX_DMA, fail);
        return true;
    }
    r->head = (index + 1) % r->size;
    if (status == NIC_DESC_ST_DONE) {
        s->rx_packets++;
        trace_ioguard_nic_rx(index, size);
    } else {
        s->rx_dropped++;
    }
    nic_raise(s, NIC_INT_RX);
    return true;
}

static bool nic_can_receive(NetClientState *nc)
{
    IoguardNicState *s = qemu_get_nic_opaque(nc);

    /* In loopback the network is disconnected: frames from it wait. */
    return (s->status & NIC_STATUS_LINK_UP) &&
           !(s->ctrl & NIC_CTRL_LOOPBACK) && nic_rx_has_buffer(s);
}

static ssize_t nic_receive(NetClientState *nc, const uint8_t *buf, size_t size)
{
    IoguardNicState *s = qemu_get_nic_opaque(nc);

    nic_link_fault(s);
    if (!(s->status & NIC_STATUS_LINK_UP) || size < NIC_MIN_FRAME ||
        !nic_frame_wanted(s, buf, size)) {
        return size;            /* not for us: gone */
    }
    if (s->ctrl & NIC_CTRL_LOOPBACK) {
        return 0;
    }
    return nic_rx_frame(s, buf, size) ? size : 0;
}

/* Transmit */

/*
 * Write back the descriptors of one packet, first..first+count-1, with
 * status. Returns false if the ring became unreachable.
 */
static bool nic_tx_complete(IoguardNicState *s, uint32_t first, uint32_t count,
                            uint16_t status, uint16_t sent)
{
    NicRing *r = &s->tx;
    uint32_t i, fail;

    for (i = 0; i < count; i++) {
        uint32_t index = (first + i) % r->size;
        bool last = i + 1 == count;

        if (!nic_desc_complete(s, r, index, last ? NIC_DESC_EOP : 0, status,
                               last ? sent : 0, &fail)) {
            nic_ring_stop(s, r, NIC_ERR_TX_DMA, fail);
            return false;
        }
    }
    r->head = (first + count) % r->size;
    return true;
}

typedef enum {
    TX_WAIT,        /* nothing complete to send yet: come back on a doorbell */
    TX_DONE,        /* one packet consumed (sent or failed) */
    TX_STOPPED,     /* the TX ring stopped */
} TxStep;

/*
 * Gather the next packet's descriptors from HEAD, read its fragments into
 * s->frame and send it (to the network, or to our RX ring in loopback).
 */
static TxStep nic_tx_one(IoguardNicState *s, uint32_t *consumed,
                         uint32_t *dma_bytes)
{
    NicRing *r = &s->tx;
    uint32_t pending = nic_ring_pending(r);
    uint32_t max_frags = s->sg ? NIC_MAX_FRAGS : 1;
    struct ioguard_nic_desc d[NIC_MAX_FRAGS];
    uint32_t count = 0, total = 0, fail = 0, err = NIC_ERR_NONE;
    bool eop = false;

    while (count < pending && count < max_frags && !eop) {
        uint32_t index = (r->head + count) % r->size;

        if (!nic_desc_read(s, r, index, &d[count], &fail)) {
            nic_ring_stop(s, r, NIC_ERR_TX_DMA, fail);
            return TX_STOPPED;
        }
        if (!(d[count].flags & NIC_DESC_OWN)) {
            return TX_WAIT;
        }
        eop = d[count].flags & NIC_DESC_EOP;
        if (d[count].len == 0 && err == NIC_ERR_NONE) {
            err = NIC_ERR_DESC_LEN;
            fail = nic_desc_addr(r, index);
        }
        total += d[count].len;
        count++;
    }
    if (!eop) {
        if (count < max_frags) {
            return TX_WAIT;     /* the rest of the packet is not posted yet */
        }
        err = s->sg ? NIC_ERR_DESC_CHAIN : NIC_ERR_NO_SG;
        fail = nic_desc_addr(r, r->head);
    } else if (err == NIC_ERR_NONE &&
               (total > NIC_MAX_FRAME || total < NIC_MIN_FRAME)) {
        err = NIC_ERR_DESC_LEN;
        fail = nic_desc_addr(r, r->head);
    }
    if (err != NIC_ERR_NONE) {
        nic_guest_error(s, err, fail, "TX packet refused");
        *consumed += count;
        return nic_tx_complete(s, r->head, count, nic_desc_error(err), 0) ?
               TX_DONE : TX_STOPPED;
    }

    /* Loopback is lossless: the packet waits for a receive buffer. */
    if ((s->ctrl & NIC_CTRL_LOOPBACK) && !nic_rx_has_buffer(s)) {
        return TX_WAIT;
    }

    total = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (!nic_dma(s, IOGUARD_FAULT_SITE_NIC_DMA, d[i].addr,
                     s->frame + total, d[i].len, DMA_DIRECTION_TO_DEVICE,
                     &fail)) {
            nic_error(s, NIC_ERR_TX_DMA, fail);
            *consumed += count;
            return nic_tx_complete(s, r->head, count,
                                   nic_desc_error(NIC_ERR_TX_DMA), 0) ?
                   TX_DONE : TX_STOPPED;
        }
        total += d[i].len;
    }

    trace_ioguard_nic_tx(r->head, count, total);
    *dma_bytes += total;
    nic_link_fault(s);      /* in loopback the frame still goes round */
    if (s->ctrl & NIC_CTRL_LOOPBACK) {
        *dma_bytes += total;
        if (!nic_rx_frame(s, s->frame, total)) {
            return TX_WAIT;     /* its buffer is not handed over yet */
        }
    } else if (s->status & NIC_STATUS_LINK_UP) {
        qemu_send_packet(qemu_get_queue(s->nic), s->frame, total);
    }
    s->tx_packets++;
    *consumed += count;
    return nic_tx_complete(s, r->head, count, NIC_DESC_ST_DONE, total) ?
           TX_DONE : TX_STOPPED;
}

static void nic_tx_bh(void *opaque)
{
    IoguardNicState *s = opaque;
    uint32_t consumed = 0, dma_bytes = 0;
    bool sent = false;

    while (s->tx.running && consumed < NIC_BH_BUDGET &&
           dma_bytes < NIC_BH_DMA_BUDGET) {
        TxStep step = nic_tx_one(s, &consumed, &dma_bytes);

        if (step != TX_DONE) {
            break;
        }
        sent = true;
    }
    if (sent) {
        nic_raise(s, NIC_INT_TX_DONE);
    }
    if (s->tx.running &&
        (consumed >= NIC_BH_BUDGET || dma_bytes >= NIC_BH_DMA_BUDGET)) {
        qemu_bh_schedule(s->tx_bh);     /* more to do: after others ran */
    }
}

/* Registers */

/* Enable or disable a ring as CTRL says; a bad ring does not start. */
static void nic_ring_control(IoguardNicState *s, NicRing *r, bool enable)
{
    uint32_t running_bit = r == &s->tx ? NIC_STATUS_TX_RUNNING
                                       : NIC_STATUS_RX_RUNNING;

    if (!enable) {
        r->running = false;
        s->status &= ~running_bit;
        return;
    }
    if (r->running) {
        return;
    }
    if (r->size < 2 || r->size > NIC_RING_MAX_SIZE ||
        (r->base & (NIC_DESC_SIZE - 1)) ||
        (uint64_t)r->base + (uint64_t)r->size * NIC_DESC_SIZE > (1ULL << 32) ||
        r->head >= r->size || r->tail >= r->size) {
        nic_guest_error(s, NIC_ERR_RING_CONFIG, r->base,
                        "ring enabled with a bad base or size");
        return;
    }
    r->running = true;
    s->status |= running_bit;
}

static void nic_reset_state(IoguardNicState *s)
{
    s->ctrl = 0;
    s->status &= NIC_STATUS_LINK_UP;
    s->int_status = 0;
    s->int_mask = 0;
    s->err_code = NIC_ERR_NONE;
    s->err_addr = 0;
    memset(&s->tx, 0, sizeof(s->tx));
    memset(&s->rx, 0, sizeof(s->rx));
    s->tx_packets = s->rx_packets = s->rx_dropped = s->dma_errors = 0;
    nic_te_reset(s);
    nic_update_intx(s);
}

static void nic_kick_rx(IoguardNicState *s)
{
    if (nic_rx_has_buffer(s)) {
        qemu_flush_queued_packets(qemu_get_queue(s->nic));
        if (s->ctrl & NIC_CTRL_LOOPBACK) {
            qemu_bh_schedule(s->tx_bh);     /* TX may wait for RX space */
        }
    }
}

static void nic_write_ctrl(IoguardNicState *s, uint32_t val)
{
    if (val & NIC_CTRL_RESET) {
        nic_reset_state(s);
        return;
    }
    s->ctrl = val & (NIC_CTRL_TX_EN | NIC_CTRL_RX_EN | NIC_CTRL_LOOPBACK |
                     NIC_CTRL_PROMISC);
    nic_ring_control(s, &s->tx, val & NIC_CTRL_TX_EN);
    nic_ring_control(s, &s->rx, val & NIC_CTRL_RX_EN);
    nic_kick_rx(s);
    qemu_bh_schedule(s->tx_bh);
}

static void nic_write_ring(IoguardNicState *s, NicRing *r, hwaddr reg,
                           uint32_t val)
{
    if (reg == NIC_REG_TX_TAIL - NIC_REG_TX_RING_BASE) {
        if (r->size == 0 || val >= r->size) {
            nic_guest_error(s, NIC_ERR_RING_INDEX, val,
                            "ring tail beyond the ring size");
            return;
        }
        r->tail = val;
        if (r == &s->tx) {
            qemu_bh_schedule(s->tx_bh);
        } else {
            nic_kick_rx(s);
        }
        return;
    }
    if (r->running) {
        qemu_log_mask(LOG_GUEST_ERROR, "ioguard-nic: ring register 0x%"
                      HWADDR_PRIx " written while the ring runs: ignored\n",
                      reg);
        return;
    }
    switch (reg) {
    case NIC_REG_TX_RING_BASE - NIC_REG_TX_RING_BASE:
        r->base = val;
        break;
    case NIC_REG_TX_RING_SIZE - NIC_REG_TX_RING_BASE:
        /* A new size starts the ring over: indices of the old one mean nothing. */
        r->size = val;
        r->head = r->tail = 0;
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "ioguard-nic: write to read-only ring "
                      "register 0x%" HWADDR_PRIx "\n", reg);
    }
}

static uint32_t nic_read_ring(const NicRing *r, hwaddr reg)
{
    switch (reg) {
    case 0x0: return r->base;
    case 0x4: return r->size;
    case 0x8: return r->head;
    default: return r->tail;
    }
}

static uint32_t nic_cap(IoguardNicState *s)
{
    return (s->sg ? NIC_CAP_SG : 0) | NIC_CAP_LOOPBACK | NIC_CAP_TEST_ENGINE |
           ((s->sg ? NIC_MAX_FRAGS : 1) << NIC_CAP_MAX_FRAGS_SHIFT);
}

static uint64_t nic_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    IoguardNicState *s = opaque;
    const uint8_t *mac = s->conf.macaddr.a;
    uint32_t val = 0;

    if (size != 4 || (addr & 3)) {
        qemu_log_mask(LOG_GUEST_ERROR, "ioguard-nic: %u-byte read at 0x%"
                      HWADDR_PRIx ": registers are 32-bit\n", size, addr);
        return 0;
    }
    switch (addr) {
    case NIC_REG_ID: val = IOGUARD_NIC_ID; break;
    case NIC_REG_CAP: val = nic_cap(s); break;
    case NIC_REG_CTRL: val = s->ctrl; break;
    case NIC_REG_STATUS: val = s->status; break;
    case NIC_REG_INT_STATUS: val = s->int_status; break;
    case NIC_REG_INT_MASK: val = s->int_mask; break;
    case NIC_REG_ERR_CODE: val = s->err_code; break;
    case NIC_REG_ERR_ADDR: val = s->err_addr; break;
    case NIC_REG_MAC_LO: val = ldl_le_p(mac); break;
    case NIC_REG_MAC_HI: val = lduw_le_p(mac + 4); break;
    case NIC_REG_TX_RING_BASE ... NIC_REG_TX_TAIL:
        val = nic_read_ring(&s->tx, addr - NIC_REG_TX_RING_BASE);
        break;
    case NIC_REG_RX_RING_BASE ... NIC_REG_RX_TAIL:
        val = nic_read_ring(&s->rx, addr - NIC_REG_RX_RING_BASE);
        break;
    case NIC_REG_TX_PACKETS: val = s->tx_packets; break;
    case NIC_REG_RX_PACKETS: val = s->rx_packets; break;
    case NIC_REG_RX_DROPPED: val = s->rx_dropped; break;
    case NIC_REG_DMA_ERRORS: val = s->dma_errors; break;
    case NIC_REG_TE_SRC ... NIC_REG_TE_PASID:
        val = nic_te_read(s, addr);
        break;
    default:
        break;                  /* unassigned registers read as zero */
    }
    trace_ioguard_nic_mmio_read(addr, val);
    return val;
}

static void nic_mmio_write(void *opaque, hwaddr addr, uint64_t val64,
                           unsigned size)
{
    IoguardNicState *s = opaque;
    uint32_t val = val64;

    if (size != 4 || (addr & 3)) {
        qemu_log_mask(LOG_GUEST_ERROR, "ioguard-nic: %u-byte write at 0x%"
                      HWADDR_PRIx ": registers are 32-bit, ignored\n",
                      size, addr);
        return;
    }
    trace_ioguard_nic_mmio_write(addr, val);
    switch (addr) {
    case NIC_REG_CTRL:
        nic_write_ctrl(s, val);
        break;
    case NIC_REG_STATUS:
        if (val & NIC_STATUS_ERROR) {
            s->status &= ~NIC_STATUS_ERROR;
            s->err_code = NIC_ERR_NONE;
            s->err_addr = 0;
        }
        break;
    case NIC_REG_INT_STATUS:
        s->int_status &= ~val;
        nic_update_intx(s);
        break;
    case NIC_REG_INT_MASK: {
        uint32_t unmasked = val & ~s->int_mask & s->int_status;

        s->int_mask = val & NIC_INT_ALL;
        if (unmasked && msi_enabled(PCI_DEVICE(s))) {
            msi_notify(PCI_DEVICE(s), 0);
        }
        nic_update_intx(s);
        break;
    }
    case NIC_REG_TX_RING_BASE ... NIC_REG_TX_TAIL:
        nic_write_ring(s, &s->tx, addr - NIC_REG_TX_RING_BASE, val);
        break;
    case NIC_REG_RX_RING_BASE ... NIC_REG_RX_TAIL:
        nic_write_ring(s, &s->rx, addr - NIC_REG_RX_RING_BASE, val);
        break;
    case NIC_REG_TE_SRC ... NIC_REG_TE_CMD:
    case NIC_REG_TE_PASID:
        nic_te_write(s, addr, val);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "ioguard-nic: write 0x%x to read-only "
                      "or unassigned register 0x%" HWADDR_PRIx "\n", val, addr);
    }
}

static const MemoryRegionOps nic_mmio_ops = {
    .read = nic_mmio_read,
    .write = nic_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 1, .max_access_size = 4 },
};

/* The network side */

static void nic_link_changed(IoguardNicState *s)
{
    bool up = !qemu_get_queue(s->nic)->link_down && !s->link_flapped;

    if (up == !!(s->status & NIC_STATUS_LINK_UP)) {
        return;
    }
    s->status = up ? s->status | NIC_STATUS_LINK_UP
                   : s->status & ~NIC_STATUS_LINK_UP;
    nic_raise(s, NIC_INT_LINK);
    if (up) {
        nic_kick_rx(s);
    }
}

static void nic_link_status_changed(NetClientState *nc)
{
    nic_link_changed(qemu_get_nic_opaque(nc));
}

static void nic_link_up_timer(void *opaque)
{
    IoguardNicState *s = opaque;

    s->link_flapped = false;
    nic_link_changed(s);
}

/*
 * Fault site nic-link, checked for each frame the NIC sends or takes from
 * the network while its link is up: a link-flap takes the link down for
 * the rule's time.
 */
static void nic_link_fault(IoguardNicState *s)
{
    IoguardFiredFault f;

    if (!(s->status & NIC_STATUS_LINK_UP) ||
        !ioguard_fault_check(s->faults, IOGUARD_FAULT_SITE_NIC_LINK,
                             pci_requester_id(PCI_DEVICE(s)), 0, false, &f)) {
        return;
    }
    s->link_flapped = true;
    nic_link_changed(s);
    timer_mod(s->link_up_timer,
              qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + f.delay_ns);
}

static NetClientInfo nic_net_info = {
    .type = NET_CLIENT_DRIVER_NIC,
    .size = sizeof(NICState),
    .can_receive = nic_can_receive,
    .receive = nic_receive,
    .link_status_changed = nic_link_status_changed,
};

/* The device */

static void nic_realize(PCIDevice *pdev, Error **errp)
{
    IoguardNicState *s = IOGUARD_NIC(pdev);
    DeviceState *dev = DEVICE(pdev);

    pci_config_set_interrupt_pin(pdev->config, 1);
    if (msi_init(pdev, 0, 1, true, false, errp)) {
        return;
    }
    memory_region_init_io(&s->mmio, OBJECT(s), &nic_mmio_ops, s,
                          "ioguard-nic-mmio", IOGUARD_NIC_MMIO_SIZE);
    pci_register_bar(pdev, IOGUARD_NIC_BAR, PCI_BASE_ADDRESS_SPACE_MEMORY,
                     &s->mmio);

    s->tx_bh = qemu_bh_new_guarded(nic_tx_bh, s, &dev->mem_reentrancy_guard);
    s->te_bh = qemu_bh_new_guarded(nic_te_bh, s, &dev->mem_reentrancy_guard);

    s->faults = ioguard_fault_device_new(dev, IOGUARD_FAULT_SITES_NIC,
                                         s->fault_rules, s->fault_seed, NULL,
                                         errp);
    if (!s->faults) {
        error_prepend(errp, "ioguard-nic: ");
        msi_uninit(pdev);
        return;
    }
    s->link_up_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, nic_link_up_timer, s);
    if (!nic_ats_realize(s, errp) || !nic_pri_realize(s, errp)) {
        nic_ats_exit(s);        /* (its listener, if it got that far) */
        ioguard_fault_device_free(s->faults);
        timer_free(s->link_up_timer);
        qemu_bh_delete(s->tx_bh);
        qemu_bh_delete(s->te_bh);
        msi_uninit(pdev);
        return;
    }

    qemu_macaddr_default_if_unset(&s->conf.macaddr);
    s->nic = qemu_new_nic(&nic_net_info, &s->conf,
                          object_get_typename(OBJECT(s)), dev->id,
                          &dev->mem_reentrancy_guard, s);
    qemu_format_nic_info_str(qemu_get_queue(s->nic), s->conf.macaddr.a);
    s->status = qemu_get_queue(s->nic)->link_down ? 0 : NIC_STATUS_LINK_UP;
}

static void nic_exit(PCIDevice *pdev)
{
    IoguardNicState *s = IOGUARD_NIC(pdev);

    nic_pri_exit(s);
    nic_ats_exit(s);
    qemu_bh_delete(s->tx_bh);
    qemu_bh_delete(s->te_bh);
    timer_free(s->link_up_timer);
    ioguard_fault_device_free(s->faults);
    g_free(s->saved_faults);
    qemu_del_nic(s->nic);
    msi_uninit(pdev);
}

static void nic_reset(DeviceState *dev)
{
    nic_reset_state(IOGUARD_NIC(dev));
    nic_atc_flush(IOGUARD_NIC(dev));
    nic_pri_reset(IOGUARD_NIC(dev));
}

static void nic_write_config(PCIDevice *pdev, uint32_t address, uint32_t val,
                             int len)
{
    pci_default_write_config(pdev, address, val, len);
    nic_ats_config_written(IOGUARD_NIC(pdev), address, len);
    nic_pri_config_written(IOGUARD_NIC(pdev), address, len);
}

/* ats=on behind a PCIe port: a PCIe endpoint, which is decided before the
 * PCI core sizes its configuration space. */
static DeviceRealize nic_parent_dc_realize;

static void nic_dc_realize(DeviceState *dev, Error **errp)
{
    PCIDevice *pdev = PCI_DEVICE(dev);

    if (IOGUARD_NIC(dev)->ats && pci_bus_is_express(pci_get_bus(pdev))) {
        pdev->cap_present |= QEMU_PCI_CAP_EXPRESS;
    }
    nic_parent_dc_realize(dev, errp);
}

static void nic_instance_init(Object *obj)
{
    IoguardNicState *s = IOGUARD_NIC(obj);

    /* The device IOTLB's counters (ats=on), for tests and the curious. */
    object_property_add_uint64_ptr(obj, "atc-hits", &s->atc_hits,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "atc-misses", &s->atc_misses,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "atc-invalidations",
                                   &s->atc_invalidations, OBJ_PROP_FLAG_READ);
    /* And its page requests (pri=on) and the answers they got. */
    object_property_add_uint64_ptr(obj, "page-requests", &s->page_requests,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "page-responses", &s->page_responses,
                                   OBJ_PROP_FLAG_READ);
}

static const Property nic_properties[] = {
    DEFINE_NIC_PROPERTIES(IoguardNicState, conf),
    DEFINE_PROP_BOOL("sg", IoguardNicState, sg, true),
    DEFINE_PROP_STRING("fault-rules", IoguardNicState, fault_rules),
    DEFINE_PROP_UINT64("fault-seed", IoguardNicState, fault_seed, 0),
    DEFINE_PROP_BOOL("ats", IoguardNicState, ats, false),
    DEFINE_PROP_BOOL("pri", IoguardNicState, pri, false),
};

/*
 * Snapshots and migration. Nothing is in flight between bottom-half runs
 * but what the registers say (the TX ring from HEAD, the test engine from
 * TE_DONE_LEN and TE_CRC), so the registers are the whole state, with the
 * fault rules' state as an opaque buffer.
 */
static const VMStateDescription nic_ring_vmstate = {
    .name = TYPE_IOGUARD_NIC "/ring",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(base, NicRing),
        VMSTATE_UINT32(size, NicRing),
        VMSTATE_UINT32(head, NicRing),
        VMSTATE_UINT32(tail, NicRing),
        VMSTATE_BOOL(running, NicRing),
        VMSTATE_END_OF_LIST()
    }
};

static int nic_pre_save(void *opaque)
{
    IoguardNicState *s = opaque;
    size_t size;

    g_free(s->saved_faults);
    s->saved_faults = ioguard_faults_save(s->faults, &size);
    s->saved_faults_size = size;
    return 0;
}

static int nic_post_save(void *opaque)
{
    IoguardNicState *s = opaque;

    g_clear_pointer(&s->saved_faults, g_free);
    s->saved_faults_size = 0;
    return 0;
}

/* A ring as a register write could have left it, and running only if
 * enabling it would have succeeded. */
static bool nic_ring_valid(const NicRing *r)
{
    if (r->size > NIC_RING_MAX_SIZE ||
        (r->size && (r->head >= r->size || r->tail >= r->size)) ||
        (!r->size && (r->head || r->tail))) {
        return false;
    }
    return !r->running ||
           (r->size >= 2 && !(r->base & (NIC_DESC_SIZE - 1)) &&
            (uint64_t)r->base + (uint64_t)r->size * NIC_DESC_SIZE <=
            (1ULL << 32));
}

static int nic_post_load(void *opaque, int version_id)
{
    IoguardNicState *s = opaque;
    bool faults_ok = ioguard_faults_load(s->faults, s->saved_faults,
                                         s->saved_faults_size);

    nic_post_save(s);
    if (!faults_ok || !nic_ring_valid(&s->tx) || !nic_ring_valid(&s->rx) ||
        s->err_code >= ARRAY_SIZE(nic_err_names) ||
        ((s->te_status & NIC_TE_STATUS_BUSY) &&
         (s->te_op < NIC_TE_OP_READ || s->te_op > NIC_TE_OP_COPY ||
          s->te_len == 0 || s->te_len > NIC_TE_MAX_LEN ||
          s->te_done_len > s->te_len))) {
        error_report("ioguard-nic: the saved state is malformed");
        return -EINVAL;
    }
    /*
     * Translations kept before a snapshot was loaded are not the loaded
     * guest's (the cache is not saved: empty, it asks again).
     */
    nic_atc_flush(s);
    /* The link as the device last saw it, unless a fault rule has it down. */
    if (!s->link_flapped) {
        qemu_get_queue(s->nic)->link_down =
            !(s->status & NIC_STATUS_LINK_UP);
    }
    if (s->tx.running) {
        qemu_bh_schedule(s->tx_bh);
    }
    if (s->te_status & NIC_TE_STATUS_BUSY) {
        qemu_bh_schedule(s->te_bh);
    }
    return 0;
}

/* TE_PASID (pri=on), when it holds anything. */
static bool nic_te_pasid_needed(void *opaque)
{
    return IOGUARD_NIC(opaque)->te_pasid != 0;
}

static const VMStateDescription nic_te_pasid_vmstate = {
    .name = TYPE_IOGUARD_NIC "/te-pasid",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = nic_te_pasid_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(te_pasid, IoguardNicState),
        VMSTATE_END_OF_LIST()
    }
};

static const VMStateDescription nic_vmstate = {
    .name = TYPE_IOGUARD_NIC,
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = nic_pre_save,
    .post_save = nic_post_save,
    .post_load = nic_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, IoguardNicState),
        VMSTATE_UINT32(ctrl, IoguardNicState),
        VMSTATE_UINT32(status, IoguardNicState),
        VMSTATE_UINT32(int_status, IoguardNicState),
        VMSTATE_UINT32(int_mask, IoguardNicState),
        VMSTATE_UINT32(err_code, IoguardNicState),
        VMSTATE_UINT32(err_addr, IoguardNicState),
        VMSTATE_STRUCT(tx, IoguardNicState, 1, nic_ring_vmstate, NicRing),
        VMSTATE_STRUCT(rx, IoguardNicState, 1, nic_ring_vmstate, NicRing),
        VMSTATE_UINT32(tx_packets, IoguardNicState),
        VMSTATE_UINT32(rx_packets, IoguardNicState),
        VMSTATE_UINT32(rx_dropped, IoguardNicState),
        VMSTATE_UINT32(dma_errors, IoguardNicState),
        VMSTATE_UINT32(te_src, IoguardNicState),
        VMSTATE_UINT32(te_dst, IoguardNicState),
        VMSTATE_UINT32(te_len, IoguardNicState),
        VMSTATE_UINT32(te_pattern, IoguardNicState),
        VMSTATE_UINT32(te_op, IoguardNicState),
        VMSTATE_UINT32(te_status, IoguardNicState),
        VMSTATE_UINT32(te_crc, IoguardNicState),
        VMSTATE_UINT32(te_done_len, IoguardNicState),
        VMSTATE_UINT32(te_err_addr, IoguardNicState),
        VMSTATE_BOOL(link_flapped, IoguardNicState),
        VMSTATE_TIMER_PTR(link_up_timer, IoguardNicState),
        VMSTATE_UINT32(saved_faults_size, IoguardNicState),
        VMSTATE_VBUFFER_ALLOC_UINT32(saved_faults, IoguardNicState, 1, NULL,
                                     saved_faults_size),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription * const []) {
        &nic_te_pasid_vmstate,
        NULL
    }
};

static void nic_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = nic_realize;
    k->exit = nic_exit;
    k->config_write = nic_write_config;
    device_class_set_parent_realize(dc, nic_dc_realize,
                                    &nic_parent_dc_realize);
    k->vendor_id = IOGUARD_NIC_PCI_VENDOR_ID;
    k->device_id = IOGUARD_NIC_PCI_DEVICE_ID;
    k->class_id = IOGUARD_NIC_PCI_CLASS;
    k->revision = 1;
    dc->desc = "ioguard 32-bit bus-master NIC";
    dc->vmsd = &nic_vmstate;
    device_class_set_legacy_reset(dc, nic_reset);
    device_class_set_props(dc, nic_properties);
    set_bit(DEVICE_CATEGORY_NETWORK, dc->categories);
}

static const TypeInfo nic_type = {
    .name = TYPE_IOGUARD_NIC,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(IoguardNicState),
    .instance_init = nic_instance_init,
    .class_init = nic_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { INTERFACE_PCIE_DEVICE },      /* with ats=on behind a PCIe port */
        { },
    },
};

static void nic_register_types(void)
{
    type_register_static(&nic_type);
}

type_init(nic_register_types)
