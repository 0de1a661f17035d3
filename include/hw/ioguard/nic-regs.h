/*
 * ioguard-nic: the register map and descriptor format of ioguard's 32-bit
 * bus-master NIC.
 *
 * One header shared by the device model (hw/ioguard/nic.c), its Linux driver
 * (tests/guest/ioguard-nic/), the qtests and the guest programs: plain C, no
 * includes, every field little-endian.
 *
 * The device is a 32-bit bus master: every DMA address it is given (ring
 * bases, buffer addresses, test-engine addresses) is a 32-bit register or
 * descriptor field. It reaches memory above 4 GiB only through an IOMMU.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_IOGUARD_NIC_REGS_H
#define HW_IOGUARD_NIC_REGS_H

/* PCI identity (vendor 1234h: QEMU's test vendor; 10a1 is used by nobody) */
#define IOGUARD_NIC_PCI_VENDOR_ID       0x1234
#define IOGUARD_NIC_PCI_DEVICE_ID       0x10a1
#define IOGUARD_NIC_PCI_CLASS           0x0200      /* Ethernet controller */

/* BAR 0: the register window */
#define IOGUARD_NIC_BAR                 0
#define IOGUARD_NIC_MMIO_SIZE           0x1000

/*
 * Registers. All are 32 bits wide and must be accessed as such; other
 * sizes read as zero and are ignored on write.
 */
#define NIC_REG_ID                      0x00  /* RO: IOGUARD_NIC_ID */
#define NIC_REG_CAP                     0x04  /* RO: NIC_CAP_* */
#define NIC_REG_CTRL                    0x08  /* RW: NIC_CTRL_* */
#define NIC_REG_STATUS                  0x0c  /* RO, error bits W1C: NIC_STATUS_* */
#define NIC_REG_INT_STATUS              0x10  /* W1C: NIC_INT_* */
#define NIC_REG_INT_MASK                0x14  /* RW: which NIC_INT_* raise the interrupt */
#define NIC_REG_ERR_CODE                0x18  /* RO: first NIC_ERR_* since STATUS.ERROR was cleared */
#define NIC_REG_ERR_ADDR                0x1c  /* RO: the DMA address that failed */
#define NIC_REG_MAC_LO                  0x20  /* RO: MAC bytes 0..3 */
#define NIC_REG_MAC_HI                  0x24  /* RO: MAC bytes 4..5 */

#define NIC_REG_TX_RING_BASE            0x40  /* RW: 32-bit DMA address, 16-byte aligned */
#define NIC_REG_TX_RING_SIZE            0x44  /* RW: descriptors, 2..NIC_RING_MAX_SIZE */
#define NIC_REG_TX_HEAD                 0x48  /* RO: next descriptor the device reads */
#define NIC_REG_TX_TAIL                 0x4c  /* RW: one past the last descriptor posted (doorbell) */
#define NIC_REG_RX_RING_BASE            0x50
#define NIC_REG_RX_RING_SIZE            0x54
#define NIC_REG_RX_HEAD                 0x58
#define NIC_REG_RX_TAIL                 0x5c

/* Device counters (RO, wrap at 2^32; cleared by NIC_CTRL_RESET) */
#define NIC_REG_TX_PACKETS              0x60
#define NIC_REG_RX_PACKETS              0x64
#define NIC_REG_RX_DROPPED              0x68  /* frames dropped: no buffer, too long, DMA error */
#define NIC_REG_DMA_ERRORS              0x6c  /* DMAs the bus (the IOMMU) refused */

/*
 * The bus-master test engine: DMA-read, DMA-write or copy a range at
 * 32-bit addresses, so that software can probe what the device can reach.
 * Writing TE_CMD starts the operation; TE_STATUS says when it is done.
 */
/* Test engine: SRC, DST, LEN and PATTERN ignore writes while TE_STATUS is BUSY. */
#define NIC_REG_TE_SRC                  0x80  /* RW: source DMA address (READ, COPY) */
#define NIC_REG_TE_DST                  0x84  /* RW: destination DMA address (WRITE, COPY) */
#define NIC_REG_TE_LEN                  0x88  /* RW: bytes, 1..NIC_TE_MAX_LEN */
#define NIC_REG_TE_PATTERN              0x8c  /* RW: WRITE fills with this byte (bits 7:0) */
#define NIC_REG_TE_CMD                  0x90  /* WO: NIC_TE_OP_* starts an operation */
#define NIC_REG_TE_STATUS               0x94  /* RO: NIC_TE_STATUS_* */
#define NIC_REG_TE_CRC                  0x98  /* RO: CRC-32 (zlib's) of the bytes read */
#define NIC_REG_TE_DONE_LEN             0x9c  /* RO: bytes completed before any error */
#define NIC_REG_TE_ERR_ADDR             0xa0  /* RO: the DMA address that failed */
/* RW: with pri=on, the PASID prefix of the engine's requests (NIC_TE_PASID_*) */
#define NIC_REG_TE_PASID                0xa4

#define IOGUARD_NIC_ID                  0x10a10001u /* device 10a1, register map version 1 */

/* CAP */
#define NIC_CAP_SG                      (1u << 0)  /* TX packets may span descriptors */
#define NIC_CAP_LOOPBACK                (1u << 1)
#define NIC_CAP_TEST_ENGINE             (1u << 2)
#define NIC_CAP_MAX_FRAGS_SHIFT         8          /* bits 15:8: descriptors per TX packet */
#define NIC_CAP_MAX_FRAGS_MASK          (0xffu << NIC_CAP_MAX_FRAGS_SHIFT)

/* CTRL */
#define NIC_CTRL_TX_EN                  (1u << 0)
#define NIC_CTRL_RX_EN                  (1u << 1)
#define NIC_CTRL_LOOPBACK               (1u << 2)  /* TX frames go to RX, not to the network */
#define NIC_CTRL_PROMISC                (1u << 3)  /* accept frames for any MAC */
#define NIC_CTRL_RESET                  (1u << 31) /* self-clearing: back to power-on state */

/* STATUS */
#define NIC_STATUS_LINK_UP              (1u << 0)
#define NIC_STATUS_TX_RUNNING           (1u << 1)  /* TX_EN accepted with a valid ring */
#define NIC_STATUS_RX_RUNNING           (1u << 2)
#define NIC_STATUS_ERROR                (1u << 8)  /* W1C: ERR_CODE/ERR_ADDR hold the first error */

/* INT_STATUS / INT_MASK */
#define NIC_INT_TX_DONE                 (1u << 0)
#define NIC_INT_RX                      (1u << 1)
#define NIC_INT_ERROR                   (1u << 2)
#define NIC_INT_TEST_DONE               (1u << 3)
#define NIC_INT_LINK                    (1u << 4)
#define NIC_INT_ALL                     0x1fu

/* ERR_CODE: why the device stopped an operation */
#define NIC_ERR_NONE                    0
#define NIC_ERR_TX_DMA                  1  /* TX descriptor or buffer read refused */
#define NIC_ERR_RX_DMA                  2  /* RX descriptor read or buffer write refused */
#define NIC_ERR_RING_CONFIG             3  /* ring base/size invalid when enabling */
#define NIC_ERR_RING_INDEX              4  /* a TAIL beyond the ring size */
#define NIC_ERR_DESC_LEN                5  /* zero length, or a packet over NIC_MAX_FRAME */
#define NIC_ERR_DESC_CHAIN              6  /* a TX packet over NIC_CAP_MAX_FRAGS descriptors */
#define NIC_ERR_NO_SG                   7  /* a multi-descriptor packet without NIC_CAP_SG */
#define NIC_ERR_TE_ARGS                 8  /* test engine: bad op, length or range */
#define NIC_ERR_TE_DMA                  9  /* test engine DMA refused */
#define NIC_ERR_TE_PAGE                 10 /* its page request was not granted */

/* Names for logs: static const char *const names[] = NIC_ERR_NAMES; */
#define NIC_ERR_NAMES {                                 \
    [NIC_ERR_NONE] = "none",                            \
    [NIC_ERR_TX_DMA] = "tx-dma",                        \
    [NIC_ERR_RX_DMA] = "rx-dma",                        \
    [NIC_ERR_RING_CONFIG] = "ring-config",              \
    [NIC_ERR_RING_INDEX] = "ring-index",                \
    [NIC_ERR_DESC_LEN] = "desc-len",                    \
    [NIC_ERR_DESC_CHAIN] = "desc-chain",                \
    [NIC_ERR_NO_SG] = "no-sg",                          \
    [NIC_ERR_TE_ARGS] = "te-args",                      \
    [NIC_ERR_TE_DMA] = "te-dma",                        \
    [NIC_ERR_TE_PAGE] = "te-page",                      \
}

/* TE_CMD */
#define NIC_TE_OP_READ                  1  /* read SRC..SRC+LEN, report TE_CRC */
#define NIC_TE_OP_WRITE                 2  /* fill DST..DST+LEN with TE_PATTERN */
#define NIC_TE_OP_COPY                  3  /* copy SRC to DST, report TE_CRC */

/* TE_STATUS */
#define NIC_TE_STATUS_BUSY              (1u << 0)
#define NIC_TE_STATUS_DONE              (1u << 1)
#define NIC_TE_STATUS_ERROR             (1u << 2)
#define NIC_TE_STATUS_PAGE_WAIT         (1u << 3)  /* waiting for a page request's answer */

/*
 * TE_PASID (pri=on, with the PASID and ATS capabilities enabled): the
 * engine's requests carry a PASID prefix, and a translation the IOMMU
 * refuses becomes a page request (PRI, if enabled); the engine waits for
 * its answer (TE_STATUS PAGE_WAIT) and retries, or stops with te-page.
 */
#define NIC_TE_PASID_MASK               0xfffffu   /* bits 19:0 */
#define NIC_TE_PASID_PRIVILEGED         (1u << 30) /* supervisor requests */
#define NIC_TE_PASID_VALID              (1u << 31) /* requests carry the PASID */
/* Limits */
#define NIC_RING_MAX_SIZE               4096
#define NIC_MAX_FRAGS                   16
#define NIC_MAX_FRAME                   16384      /* bytes, Ethernet header included */
#define NIC_MIN_FRAME                   14
#define NIC_TE_MAX_LEN                  (1u << 20)

/*
 * A descriptor: 16 bytes in a ring in the driver's memory, the same layout
 * for TX and RX.
 *
 * The driver fills addr and len, sets NIC_DESC_OWN (and, for TX, NIC_DESC_EOP
 * on a packet's last fragment), then moves TAIL past it. The device consumes
 * descriptors from HEAD, writes back status and written_len, and clears
 * NIC_DESC_OWN in flags last. A descriptor between HEAD and TAIL without
 * NIC_DESC_OWN is not ready: the device waits for it.
 */
struct ioguard_nic_desc {
    unsigned int addr;            /* 32-bit DMA address of the buffer */
    unsigned short len;           /* TX: bytes to send; RX: buffer size; never 0 */
    unsigned short flags;         /* NIC_DESC_OWN, NIC_DESC_EOP */
    unsigned short status;        /* written back: NIC_DESC_ST_* */
    unsigned short written_len;   /* RX: frame length; TX: bytes sent (on the EOP one) */
    unsigned int reserved;
};

#define NIC_DESC_SIZE                   16
#define NIC_DESC_OWN                    (1u << 15)  /* the device owns it */
#define NIC_DESC_EOP                    (1u << 0)   /* TX: last fragment of a packet; RX: set on write-back */

#define NIC_DESC_ST_DONE                (1u << 0)
#define NIC_DESC_ST_ERROR               (1u << 1)   /* the packet was not sent / received */
#define NIC_DESC_ST_ERR_SHIFT           8           /* bits 15:8: the NIC_ERR_* code */

#endif
