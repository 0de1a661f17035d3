/*
 * AMD-Vi architected formats, as ioguard implements them.
 *
 * Names follow Linux's drivers/iommu/amd/amd_iommu_types.h so that a reader
 * who knows the driver knows these. Shared by the engine (C++), the QEMU glue
 * (C), the qtests and guest-side tools: plain C, no QEMU headers.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_IOGUARD_AMD_VI_REGS_H
#define HW_IOGUARD_AMD_VI_REGS_H

/* PCI identity of the IOMMU function (vendor 1234h: QEMU's test vendor) */
#define IOGUARD_PCI_VENDOR_ID           0x1234
#define IOGUARD_IOMMU_PCI_DEVICE_ID     0x10a0
#define IOGUARD_PCI_CLASS_IOMMU         0x0806

/* Where the 16 KiB register window sits in guest-physical space */
#define IOGUARD_MMIO_BASE               0xfed80000ULL
#define IOGUARD_MMIO_SIZE               0x4000

/* IOMMU capability block in PCI config space */
#define IOGUARD_CAP_ID                  0x0f
#define IOGUARD_CAP_SIZE                0x18
#define IOGUARD_CAP_HEADER_TYPE         (3u << 16)    /* CapType 011b */
#define IOGUARD_CAP_HEADER_REV          (1u << 19)
#define IOMMU_CAP_IOTLB                 24
#define IOMMU_CAP_NPCACHE               26
#define IOMMU_CAP_EFR                   27
#define IOGUARD_CAP_BASE_LO             0x04
#define IOGUARD_CAP_BASE_HI             0x08
#define IOGUARD_CAP_RANGE               0x0c
#define IOGUARD_CAP_MISC                0x10

/* MMIO register offsets */
#define MMIO_DEV_TABLE_OFFSET           0x0000
#define MMIO_CMD_BUF_OFFSET             0x0008
#define MMIO_EVT_BUF_OFFSET             0x0010
#define MMIO_CONTROL_OFFSET             0x0018
#define MMIO_EXCL_BASE_OFFSET           0x0020
#define MMIO_EXCL_LIMIT_OFFSET          0x0028
#define MMIO_EXT_FEATURES               0x0030
#define MMIO_PPR_LOG_OFFSET             0x0038
#define MMIO_GA_LOG_BASE_OFFSET         0x00e0
#define MMIO_GA_LOG_TAIL_OFFSET         0x00e8
#define MMIO_INTCAPXT_EVT_OFFSET        0x0170
#define MMIO_INTCAPXT_PPR_OFFSET        0x0178
#define MMIO_INTCAPXT_GALOG_OFFSET      0x0180
#define MMIO_EXT_FEATURES2              0x01a0
#define MMIO_CMD_HEAD_OFFSET            0x2000
#define MMIO_CMD_TAIL_OFFSET            0x2008
#define MMIO_EVT_HEAD_OFFSET            0x2010
#define MMIO_EVT_TAIL_OFFSET            0x2018
#define MMIO_STATUS_OFFSET              0x2020
#define MMIO_PPR_HEAD_OFFSET            0x2030
#define MMIO_PPR_TAIL_OFFSET            0x2038
#define MMIO_GA_HEAD_OFFSET             0x2040
#define MMIO_GA_TAIL_OFFSET             0x2048

/* Base registers: address in 51:12, length exponent in 59:56 */
#define IOGUARD_BASE_ADDR_MASK          0x000ffffffffff000ULL
#define IOGUARD_BASE_LEN_SHIFT          56
#define IOGUARD_DEV_TABLE_SIZE_MASK     0x1ffULL      /* (bytes / 4 KiB) - 1 */
#define IOGUARD_RING_PTR_MASK           0x7fff0ULL    /* head/tail: bits 18:4 */

/* Control register bits */
#define CONTROL_IOMMU_EN                0
#define CONTROL_HT_TUN_EN               1
#define CONTROL_EVT_LOG_EN              2
#define CONTROL_EVT_INT_EN              3
#define CONTROL_COMWAIT_EN              4
#define CONTROL_INV_TIMEOUT             5
#define CONTROL_PASSPW_EN               8
#define CONTROL_RESPASSPW_EN            9
#define CONTROL_COHERENT_EN             10
#define CONTROL_ISOC_EN                 11
#define CONTROL_CMDBUF_EN               12
#define CONTROL_PPRLOG_EN               13
#define CONTROL_PPRINT_EN               14
#define CONTROL_PPR_EN                  15
#define CONTROL_GT_EN                   16
#define CONTROL_GA_EN                   17
#define CONTROL_GALOG_EN                28
#define CONTROL_GAINT_EN                29
#define CONTROL_EPH_EN                  45
#define CONTROL_XT_EN                   50
#define CONTROL_INTCAPXT_EN             51
#define CONTROL_IRTCACHEDIS             59

/* Status register bits */
#define MMIO_STATUS_EVT_OVERFLOW_MASK   (1u << 0)
#define MMIO_STATUS_EVT_INT_MASK        (1u << 1)
#define MMIO_STATUS_COM_WAIT_INT_MASK   (1u << 2)
#define MMIO_STATUS_EVT_RUN_MASK        (1u << 3)
#define MMIO_STATUS_CMDBUF_RUN_MASK     (1u << 4)
#define MMIO_STATUS_PPR_OVERFLOW_MASK   (1u << 5)
#define MMIO_STATUS_PPR_INT_MASK        (1u << 6)
#define MMIO_STATUS_PPR_RUN_MASK        (1u << 7)
#define MMIO_STATUS_GALOG_RUN_MASK      (1u << 8)
#define MMIO_STATUS_GALOG_OVERFLOW_MASK (1u << 9)
#define MMIO_STATUS_GALOG_INT_MASK      (1u << 10)

/* Extended Feature Register bits */
#define FEATURE_PREFETCH                (1ULL << 0)
#define FEATURE_PPR                     (1ULL << 1)
#define FEATURE_X2APIC                  (1ULL << 2)
#define FEATURE_NX                      (1ULL << 3)
#define FEATURE_GT                      (1ULL << 4)
#define FEATURE_IA                      (1ULL << 6)
#define FEATURE_GA                      (1ULL << 7)
#define FEATURE_HE                      (1ULL << 8)
#define FEATURE_PC                      (1ULL << 9)
#define FEATURE_HATS_SHIFT              10
#define FEATURE_HATS_6_LEVELS           (2ULL << FEATURE_HATS_SHIFT)
#define FEATURE_GATS_SHIFT              12    /* 0: 4-level v2 tables, 1: 5 too */
#define FEATURE_GATS_5_LEVELS           (1ULL << FEATURE_GATS_SHIFT)
#define FEATURE_GLX_SHIFT               14    /* GCR3 table levels - 1 */
#define FEATURE_PASMAX_SHIFT            32    /* PASID bits - 1 */
#define FEATURE_GIOSUP                  (1ULL << 48)
#define FEATURE_EPHSUP                  (1ULL << 50)

/* Commands: opcode in dw1 bits 31:28 */
#define CMD_COMPL_WAIT                  0x01
#define CMD_INV_DEV_ENTRY               0x02
#define CMD_INV_IOMMU_PAGES             0x03
#define CMD_INV_IOTLB_PAGES             0x04
#define CMD_INV_IRT                     0x05
#define CMD_PREFETCH_IOMMU_PAGES        0x06
#define CMD_COMPLETE_PPR                0x07
#define CMD_INV_ALL                     0x08
#define CMD_COMPL_WAIT_STORE_MASK       0x01
#define CMD_COMPL_WAIT_INT_MASK         0x02
#define CMD_INV_IOMMU_PAGES_SIZE_MASK   0x01
#define CMD_INV_IOMMU_PAGES_PDE_MASK    0x02
#define CMD_INV_IOMMU_PAGES_GN_MASK     0x04   /* dw2: PASID in dw0 19:0 */
#define CMD_INV_IOMMU_PAGES_PASID_MASK  0xfffffu
#define CMD_INV_IOMMU_ALL_PAGES_ADDRESS 0x7ffffffffffff000ULL
/* PREFETCH_IOMMU_PAGES: DeviceID in dw0 15:0, PFCount in dw0 31:24 */
#define CMD_PREFETCH_PFCOUNT_SHIFT      24
#define CMD_PREFETCH_SIZE_MASK          0x01          /* dw2: S */
#define CMD_PREFETCH_GN_MASK            0x04          /* dw2: GN (PASID) */
#define CMD_PREFETCH_INVAL_MASK         0x10          /* dw2: Inval */
/* COMPLETE_PPR_REQUEST: DeviceID dw0 15:0, PASID dw1 19:0 (GN in dw2),
 * PRG index dw3 8:0, response code dw3 15:12 */
#define CMD_COMPLETE_PPR_GN_MASK        0x04
#define CMD_COMPLETE_PPR_STATUS_SHIFT   12
#define CMD_PREFETCH_DW0_RESERVED       0x00ff0000u
#define CMD_PREFETCH_DW2_RESERVED       0x00000feau
#define IOGUARD_CMD_SIZE                16

/* Events: type in dw1 bits 31:28, flags in dw1 bits 27:16 */
#define EVENT_TYPE_ILL_DEV              0x1
#define EVENT_TYPE_IO_FAULT             0x2
#define EVENT_TYPE_DEV_TAB_ERR          0x3
#define EVENT_TYPE_PAGE_TAB_ERR         0x4
#define EVENT_TYPE_ILL_CMD              0x5
#define EVENT_TYPE_CMD_HARD_ERR         0x6
#define EVENT_TYPE_INV_DEV_REQ          0x8
#define EVENT_TYPE_INV_PPR_REQ          0x9
#define EVENT_FLAG_GN                   (1u << 0)
#define EVENT_FLAG_NX                   (1u << 1)
#define EVENT_FLAG_US                   (1u << 2)
#define EVENT_FLAG_I                    (1u << 3)
#define EVENT_FLAG_PR                   (1u << 4)
#define EVENT_FLAG_RW                   (1u << 5)
#define EVENT_FLAG_PE                   (1u << 6)
#define EVENT_FLAG_RZ                   (1u << 7)
#define EVENT_FLAG_TR                   (1u << 8)
#define IOGUARD_EVENT_SIZE              16

/* PPR log entries (PAGE_SERVICE_REQUEST), as two little-endian qwords:
 * q0 DeviceID 15:0, PASID[15:0] 31:16, tag 41:32 (bit 41: last of its
 * group), PASID[19:16] 45:42, flags 59:48, type 63:60; q1 the address. */
#define PPR_REQ_FAULT                   0x1
#define PPR_FLAG_EXEC                   0x002
#define PPR_FLAG_READ                   0x004
#define PPR_FLAG_WRITE                  0x020
#define PPR_FLAG_US                     0x040
#define PPR_FLAG_GN                     0x100
#define PPR_TAG_LAST                    0x200
#define PPR_LOG_ENTRY_SIZE              16

/* Device table entry: 4 quadwords q0..q3 */
#define DTE_ENTRY_SIZE                  32
#define DTE_FLAG_V                      (1ULL << 0)
#define DTE_FLAG_TV                     (1ULL << 1)
#define DTE_MODE_SHIFT                  9
#define DTE_MODE_MASK                   0x7ULL
#define DTE_FLAG_PPR                    (1ULL << 52)   /* page requests are logged */
#define DTE_FLAG_GIOV                   (1ULL << 54)   /* untagged DMA: PASID 0 */
#define DTE_FLAG_GV                     (1ULL << 55)   /* the GCR3 table is valid */
#define DTE_GLX_SHIFT                   56             /* GCR3 table levels - 1 */
#define DTE_GLX_MASK                    0x3ULL
/* The GCR3 table's address, in three pieces (address bits -> DTE bits) */
#define DTE_GCR3_SHIFT_A                58             /* q0 60:58 = 14:12 */
#define DTE_GCR3_SHIFT_B                16             /* q1 31:16 = 30:15 */
#define DTE_GCR3_SHIFT_C                43             /* q1 63:43 = 51:31 */
#define DTE_GPT_LEVEL_SHIFT             54             /* q2: 0 4-level, 1 5-level */
#define DTE_GPT_LEVEL_MASK              0x3ULL
#define GUEST_PGTABLE_4_LEVEL           0
#define GUEST_PGTABLE_5_LEVEL           1
#define DTE_FLAG_IR                     (1ULL << 61)
#define DTE_FLAG_IW                     (1ULL << 62)
#define DTE_DOMID_MASK                  0xffffULL      /* q1 */
#define DTE_IRQ_IV                      (1ULL << 0)    /* q2 */
#define DTE_IRQ_TABLE_LEN_SHIFT         1
#define DTE_IRQ_TABLE_LEN_MASK          0xfULL
#define DTE_IRQ_ROOT_MASK               0x000fffffffffffc0ULL
#define DTE_IRQ_INITPASS                (1ULL << 56)
#define DTE_IRQ_EINTPASS                (1ULL << 57)
#define DTE_IRQ_NMIPASS                 (1ULL << 58)
#define DTE_IRQ_INTCTL_SHIFT            60
#define DTE_IRQ_INTCTL_MASK             0x3ULL
#define DTE_IRQ_LINT0PASS               (1ULL << 62)
#define DTE_IRQ_LINT1PASS               (1ULL << 63)
#define DTE_INTCTL_ABORT                0
#define DTE_INTCTL_PASS                 1
#define DTE_INTCTL_REMAP                2
/* Reserved (must-be-zero) bits; a DTE with any set is an ILLEGAL_DEV_TABLE_ENTRY */
#define DTE_Q0_RESERVED                 (0x7cULL | (1ULL << 63))
#define DTE_Q2_RESERVED                 (3ULL << 52)
#define DTE_Q3_RESERVED                 (0x7fffULL | (0x3fULL << 48))

/* v1 page-table entries */
#define IOMMU_PTE_PR                    (1ULL << 0)
#define IOMMU_PTE_NEXT_LEVEL_SHIFT      9
#define IOMMU_PTE_NEXT_LEVEL_MASK       0x7ULL
#define IOMMU_PTE_ADDR_MASK             0x000ffffffffff000ULL
#define IOMMU_PTE_U                     (1ULL << 59)
#define IOMMU_PTE_FC                    (1ULL << 60)
#define IOMMU_PTE_IR                    (1ULL << 61)
#define IOMMU_PTE_IW                    (1ULL << 62)
#define IOMMU_PTE_RESERVED              (0x7fULL << 52)  /* 58:52; 63 and 8:1 are ignored */
#define IOMMU_PTE_NEXT_LEVEL_LARGE      7

/* GCR3 table entries: a level's table or, at the last level, a guest CR3 */
#define GCR3_VALID                      (1ULL << 0)
#define GCR3_ADDR_MASK                  0x000ffffffffff000ULL
#define GCR3_RESERVED                   (0xfffULL << 52)

/*
 * v2 (guest) page-table entries: the x86-64 format (names as in Linux's
 * io_pgtable_v2.c). Bits 62:52 are ignored, as are PWT, PCD, G and NX
 * (no DMA asks to execute).
 */
#define IOMMU_PAGE_PRESENT              (1ULL << 0)
#define IOMMU_PAGE_RW                   (1ULL << 1)
#define IOMMU_PAGE_USER                 (1ULL << 2)
#define IOMMU_PAGE_ACCESS               (1ULL << 5)
#define IOMMU_PAGE_DIRTY                (1ULL << 6)
#define IOMMU_PAGE_PSE                  (1ULL << 7)
#define IOMMU_PAGE_ADDR_MASK            0x000ffffffffff000ULL

/*
 * ioguard's own registers, beyond AMD-Vi: in the 16 KiB window, at offsets
 * AMD does not define (real hardware reads them as 0). A guest finds them by
 * reading IOGUARD_MMIO_ID; see docs/ioguard-streaming.rst.
 */
#define IOGUARD_MMIO_ID                 0x3f00  /* RO: IOGUARD_ID_VALUE */
#define IOGUARD_MMIO_FEATURES           0x3f08  /* RO: IOGUARD_FEATURE_* */
#define IOGUARD_MMIO_CONTROL            0x3f10  /* RW: IOGUARD_CONTROL_* */
#define IOGUARD_ID_VALUE                0x0144524155474f49ULL /* "IOGUARD", v1 */
#define IOGUARD_FEATURE_STREAMING       (1ULL << 0)
#define IOGUARD_CONTROL_STREAMING_EN    (1ULL << 0)
/*
 * STREAMING attribute of a v1 leaf PTE: bit 1, which AMD leaves ignored.
 * Honoured only while IOGUARD_CONTROL_STREAMING_EN is set.
 */
#define IOGUARD_PTE_STREAMING           (1ULL << 1)

/* Interrupt remapping table entries */
#define IRTE_REMAP_EN                   (1u << 0)
#define IRTE_SUP_IOPF                   (1u << 1)
#define IRTE_INT_TYPE_SHIFT             2
#define IRTE_DM                         (1u << 6)
#define IRTE_GUEST_MODE                 (1u << 7)
#define IRTE_32_DEST_SHIFT              8
#define IRTE_32_VECTOR_SHIFT            16
#define IRTE_128_DEST_LO_SHIFT          8     /* lo: dest[23:0] in 31:8 */
#define IRTE_128_DEST_HI_SHIFT          56    /* hi: dest[31:24] in 63:56 */

/* MSI address window an interrupt request is written to */
#define IOGUARD_MSI_ADDR_FIRST          0xfee00000ULL
#define IOGUARD_MSI_ADDR_SIZE           0x100000ULL

/* The southbridge IOAPIC's requester ID as Linux expects it (00:14.0) */
#define IOGUARD_IOAPIC_DEVID            0x00a0

#endif
