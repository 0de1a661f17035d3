/*
 * ioguard-nic's DMA test engine: software names a source, a destination,
 * a length and an operation (read, write a pattern, copy) in the TE_*
 * registers, and the engine DMAs there, reporting the CRC-32 of what it
 * read and, on a refused DMA, the failing address. It is how a test makes
 * the device reach any address it likes, through the IOMMU or not.
 *
 * The operation runs in a bottom half, NIC_BH_DMA_BUDGET bytes per run,
 * from TE_DONE_LEN and TE_CRC on: those registers are all of its state,
 * so it migrates with them (nic.c's VMState). With pri=on, TE_PASID puts
 * a PASID on its requests, and a refused translation may become a page
 * request the engine waits for (nic-pri.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include <zlib.h>
#include "nic-internal.h"
#include "trace.h"

/* code: NIC_ERR_NONE, or why it stopped at fail. */
static void nic_te_finish(IoguardNicState *s, uint32_t code, uint32_t fail)
{
    bool ok = code == NIC_ERR_NONE;

    s->te_status = NIC_TE_STATUS_DONE | (ok ? 0 : NIC_TE_STATUS_ERROR);
    if (!ok) {
        s->te_err_addr = fail;
        nic_error(s, code, fail);
    }
    trace_ioguard_nic_te_done(s->te_op, s->te_done_len, ok, s->te_crc);
    nic_raise(s, NIC_INT_TEST_DONE);
}

/*
 * A refused access of the operation: a page request to wait for (true), or
 * the end of the operation.
 */
static bool nic_te_refused(IoguardNicState *s, uint32_t fail, bool write)
{
    if (nic_pri_request(s, fail, write)) {
        s->te_status |= NIC_TE_STATUS_PAGE_WAIT;
        s->te_err_addr = fail;
        return true;
    }
    nic_te_finish(s, NIC_ERR_TE_DMA, fail);
    return false;
}

/* Runs (the next NIC_BH_DMA_BUDGET bytes of) the test engine's operation. */
void nic_te_bh(void *opaque)
{
    IoguardNicState *s = opaque;
    uint64_t src = s->te_src + s->te_done_len, dst = s->te_dst + s->te_done_len;
    uint32_t left = s->te_len - s->te_done_len, fail = 0;
    uint32_t budget = NIC_BH_DMA_BUDGET;
    uLong crc = s->te_crc;      /* crc32() of nothing is 0, as started */
    bool reads = s->te_op != NIC_TE_OP_WRITE;
    bool writes = s->te_op != NIC_TE_OP_READ;

    if (!(s->te_status & NIC_TE_STATUS_BUSY)) {
        return;                 /* reset while queued */
    }
    if (s->te_status & NIC_TE_STATUS_PAGE_WAIT) {
        if (s->pri_pending) {
            return;             /* the answer has not come */
        }
        s->te_status &= ~NIC_TE_STATUS_PAGE_WAIT;
        if (s->pri_refused) {
            nic_te_finish(s, NIC_ERR_TE_PAGE, s->te_err_addr);
            return;
        }
        s->te_err_addr = 0;     /* granted: the access again */
    }
    if (s->te_op == NIC_TE_OP_WRITE) {
        memset(s->te_chunk, s->te_pattern & 0xff, sizeof(s->te_chunk));
    }
    while (left) {
        uint32_t n = MIN(left, NIC_DMA_CHUNK);

        if (!budget) {
            qemu_bh_schedule(s->te_bh);     /* the rest after others ran */
            return;
        }
        n = MIN(n, budget);
        budget -= n;
        if (reads) {
            n = MIN(n, NIC_DMA_CHUNK - (src & (NIC_DMA_CHUNK - 1)));
        }
        if (writes) {
            n = MIN(n, NIC_DMA_CHUNK - (dst & (NIC_DMA_CHUNK - 1)));
        }
        if (reads) {
            if (!nic_dma_pasid(s, IOGUARD_FAULT_SITE_NIC_DMA, src,
                               s->te_chunk, n, DMA_DIRECTION_TO_DEVICE,
                               s->te_pasid, &fail)) {
                nic_te_refused(s, fail, false);
                return;
            }
            crc = crc32(crc, s->te_chunk, n);
            src += n;
        }
        if (writes) {
            if (!nic_dma_pasid(s, IOGUARD_FAULT_SITE_NIC_DMA, dst,
                               s->te_chunk, n, DMA_DIRECTION_FROM_DEVICE,
                               s->te_pasid, &fail)) {
                /* (A retry reads the chunk again: TE_CRC counts it once.) */
                nic_te_refused(s, fail, true);
                return;
            }
            dst += n;
        }
        s->te_crc = crc;
        s->te_done_len += n;
        left -= n;
    }
    nic_te_finish(s, NIC_ERR_NONE, 0);
}

static void nic_te_start(IoguardNicState *s, uint32_t op)
{
    uint64_t len = s->te_len;
    bool range_ok = (op == NIC_TE_OP_WRITE || s->te_src + len <= (1ULL << 32)) &&
                    (op == NIC_TE_OP_READ || s->te_dst + len <= (1ULL << 32));

    if (s->te_status & NIC_TE_STATUS_BUSY) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "ioguard-nic: test engine command while busy\n");
        return;
    }
    s->te_op = op;
    s->te_crc = 0;
    s->te_done_len = 0;
    s->te_err_addr = 0;
    s->pri_tries = 0;
    s->pri_refused = false;
    if ((s->te_pasid & NIC_TE_PASID_VALID) &&
        !(nic_pasid_enabled(s) && nic_ats_enabled(s))) {
        s->te_status = NIC_TE_STATUS_DONE | NIC_TE_STATUS_ERROR;
        nic_guest_error(s, NIC_ERR_TE_ARGS, s->te_src,
                        "test engine command with a PASID, but PASIDs or "
                        "ATS are not enabled");
        nic_raise(s, NIC_INT_TEST_DONE);
        return;
    }
    if (op < NIC_TE_OP_READ || op > NIC_TE_OP_COPY || len == 0 ||
        len > NIC_TE_MAX_LEN || !range_ok) {
        s->te_status = NIC_TE_STATUS_DONE | NIC_TE_STATUS_ERROR;
        nic_guest_error(s, NIC_ERR_TE_ARGS,
                        op == NIC_TE_OP_WRITE ? s->te_dst : s->te_src,
                        "test engine command with a bad op, length or range");
        nic_raise(s, NIC_INT_TEST_DONE);
        return;
    }
    s->te_status = NIC_TE_STATUS_BUSY;
    qemu_bh_schedule(s->te_bh);
}

/* Registers */

uint32_t nic_te_read(IoguardNicState *s, hwaddr addr)
{
    switch (addr) {
    case NIC_REG_TE_SRC: return s->te_src;
    case NIC_REG_TE_DST: return s->te_dst;
    case NIC_REG_TE_LEN: return s->te_len;
    case NIC_REG_TE_PATTERN: return s->te_pattern;
    case NIC_REG_TE_STATUS: return s->te_status;
    case NIC_REG_TE_CRC: return s->te_crc;
    case NIC_REG_TE_DONE_LEN: return s->te_done_len;
    case NIC_REG_TE_ERR_ADDR: return s->te_err_addr;
    case NIC_REG_TE_PASID: return s->te_pasid;
    default: return 0;          /* TE_CMD is write-only */
    }
}

void nic_te_write(IoguardNicState *s, hwaddr addr, uint32_t val)
{
    if (addr == NIC_REG_TE_CMD) {
        nic_te_start(s, val);
    } else if (s->te_status & NIC_TE_STATUS_BUSY) {
        /* the running operation reads them until it is done */
        qemu_log_mask(LOG_GUEST_ERROR, "ioguard-nic: test engine register "
                      "0x%" HWADDR_PRIx " written while busy: ignored\n",
                      addr);
    } else if (addr == NIC_REG_TE_SRC) {
        s->te_src = val;
    } else if (addr == NIC_REG_TE_DST) {
        s->te_dst = val;
    } else if (addr == NIC_REG_TE_LEN) {
        s->te_len = val;
    } else if (addr == NIC_REG_TE_PASID) {
        /* Without PASID and PRI capabilities, there is no such register. */
        s->te_pasid = s->pri ? val & (NIC_TE_PASID_VALID |
                                      NIC_TE_PASID_PRIVILEGED |
                                      NIC_TE_PASID_MASK) : 0;
    } else {
        s->te_pattern = val;
    }
}

void nic_te_reset(IoguardNicState *s)
{
    s->te_src = s->te_dst = s->te_len = s->te_pattern = 0;
    s->te_op = s->te_status = s->te_crc = s->te_done_len = 0;
    s->te_err_addr = 0;
    s->te_pasid = 0;
}
