/*
 * ioguard-nic's state and the functions its two files share: nic.c (the
 * device: registers, rings, loopback, network backend, fault hooks,
 * migration) and nic-test-engine.c (the DMA test engine). Internal to
 * hw/ioguard; what a driver sees is include/hw/ioguard/nic-regs.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_IOGUARD_NIC_INTERNAL_H
#define HW_IOGUARD_NIC_INTERNAL_H

#include "hw/pci/pci_device.h"
#include "hw/ioguard/fault-device.h"
#include "hw/ioguard/nic-regs.h"
#include "net/net.h"
#include "system/dma.h"

#define TYPE_IOGUARD_NIC "ioguard-nic"
OBJECT_DECLARE_SIMPLE_TYPE(IoguardNicState, IOGUARD_NIC)

/*
 * Bytes of DMA one bottom-half run may move before yielding the loop: a
 * DMA write over guest code costs QEMU's TCG about a second per MiB (each
 * page's translated blocks are thrown away), and the main loop must answer
 * QMP within a second whatever the guest asks for.
 */
#define NIC_BH_DMA_BUDGET (128 * 1024)
/* DMA never crosses this boundary, so a refused chunk names its page. */
#define NIC_DMA_CHUNK 4096

/* ats=on: the device IOTLB's size (nic-ats.c). */
#define NIC_ATC_ENTRIES 16

/* A translation the IOMMU gave the NIC (an ATS translation completion). */
typedef struct NicAtcEntry {
    bool valid;
    uint64_t iova;          /* page base */
    uint64_t mask;          /* page size - 1 */
    uint64_t target;
    AddressSpace *as;       /* where target is */
    unsigned perm;          /* the accesses the IOMMU checked: IOMMU_RO|WO */
    uint64_t last_use;
    uint64_t generation;    /* the IOMMU's device-IOTLB invalidations then */
    uint32_t pasid;         /* NIC_TE_PASID_* of the request it answered */
} NicAtcEntry;

typedef struct NicAtcNotifier NicAtcNotifier;

typedef struct NicRing {
    uint32_t base;      /* registers as the driver wrote them */
    uint32_t size;
    uint32_t head;
    uint32_t tail;
    bool running;       /* enabled with a base and size that were valid */
} NicRing;

struct IoguardNicState {
    PCIDevice parent_obj;

    MemoryRegion mmio;
    NICState *nic;
    NICConf conf;
    bool sg;            /* property: multi-descriptor TX packets */

    uint32_t ctrl;
    uint32_t status;
    uint32_t int_status;
    uint32_t int_mask;
    uint32_t err_code;
    uint32_t err_addr;
    NicRing tx, rx;
    uint32_t tx_packets, rx_packets, rx_dropped, dma_errors;

    uint32_t te_src, te_dst, te_len, te_pattern;
    uint32_t te_op, te_status, te_crc, te_done_len, te_err_addr;
    uint32_t te_pasid;          /* NIC_TE_PASID_* (pri=on) */

    QEMUBH *tx_bh;
    QEMUBH *te_bh;

    /* Fault rules (docs/ioguard-faults.rst) */
    char *fault_rules;          /* property: a file of rules */
    uint64_t fault_seed;        /* property */
    IoguardFaults *faults;
    QEMUTimer *link_up_timer;   /* ends a link flap */
    bool link_flapped;          /* the link is down for a flap */
    uint8_t *saved_faults;      /* the rules' state while saved */
    uint32_t saved_faults_size;
    uint8_t frame[NIC_MAX_FRAME];
    uint8_t te_chunk[NIC_DMA_CHUNK];

    /* ATS (nic-ats.c): not saved, a restored device starts with none */
    bool ats;                   /* property: PCIe endpoint with ATS */
    NicAtcEntry atc[NIC_ATC_ENTRIES];
    uint64_t atc_clock;
    uint64_t atc_hits, atc_misses, atc_invalidations;   /* QOM, read-only */
    MemoryListener atc_listener;
    QLIST_HEAD(, NicAtcNotifier) atc_notifiers;
    /* ioguard-iommu's region, if it is what translates: its DMA verifier
     * hears of each use of a kept translation */
    IOMMUMemoryRegion *atc_verified_mr;
    const struct IoguardIommuMemoryRegionClass *atc_verifier;

    /* PASID and PRI (nic-pri.c): the test engine's page request */
    bool pri;                   /* property: PASID and PRI capabilities */
    uint16_t pasid_cap, pri_cap;    /* their offsets in config space */
    bool pri_pending;           /* a page request waits for its answer */
    uint16_t pri_group;         /* its page request group index */
    unsigned pri_tries;         /* page requests of the running operation */
    bool pri_refused;           /* the answer was not success */
    uint64_t page_requests, page_responses;             /* QOM, read-only */
};

/* nic.c: interrupts, device errors and DMA, for the test engine too. */

/* Sets causes in INT_STATUS and signals those that are new and unmasked. */
void nic_raise(IoguardNicState *s, uint32_t causes);
/* Records a device error (ERR_CODE/ERR_ADDR) and raises NIC_INT_ERROR. */
void nic_error(IoguardNicState *s, uint32_t code, uint32_t addr);
/* nic_error() for what the guest programmed wrong, with a log line. */
void nic_guest_error(IoguardNicState *s, uint32_t code, uint32_t addr,
                     const char *what);
/*
 * DMA of len bytes at addr, in chunks that never cross NIC_DMA_CHUNK, each
 * checked against the fault rules of site. On failure *fail_addr is the
 * first byte of the refused chunk; bytes before it were transferred.
 */
bool nic_dma(IoguardNicState *s, unsigned site, uint64_t addr,
             void *buf, uint32_t len, DMADirection dir,
             uint32_t *fail_addr);
/* The same, with a PASID prefix if pasid has NIC_TE_PASID_VALID. */
bool nic_dma_pasid(IoguardNicState *s, unsigned site, uint64_t addr,
                   void *buf, uint32_t len, DMADirection dir, uint32_t pasid,
                   uint32_t *fail_addr);

/* nic-test-engine.c: the DMA test engine (NIC_REG_TE_*). */

/* A read of NIC_REG_TE_SRC..NIC_REG_TE_ERR_ADDR. */
uint32_t nic_te_read(IoguardNicState *s, hwaddr addr);
/*
 * A write of NIC_REG_TE_SRC..NIC_REG_TE_CMD: the arguments while idle, or
 * a command (it starts the operation).
 */
void nic_te_write(IoguardNicState *s, hwaddr addr, uint32_t val);
/* The engine's registers as a device reset leaves them: idle. */
void nic_te_reset(IoguardNicState *s);
/* The te_bh bottom half: the running operation's next budget of DMA. */
void nic_te_bh(void *opaque);

/* nic-ats.c: ATS (ats=on). */

/* Adds the PCIe and ATS capabilities, and listens for invalidations. */
bool nic_ats_realize(IoguardNicState *s, Error **errp);
void nic_ats_exit(IoguardNicState *s);
/* Whether the guest has ATS enabled: DMA then goes through nic_ats_dma. */
bool nic_ats_enabled(IoguardNicState *s);
/* One DMA chunk (within a 4 KiB page) through the device IOTLB. */
MemTxResult nic_ats_dma(IoguardNicState *s, uint64_t addr, void *buf,
                        uint32_t len, DMADirection dir, uint32_t pasid);
/*
 * ioguard-iommu's region for the NIC, enabled or not (it stays in the
 * device's address space while its DMA is identity), and its class; NULL
 * if another IOMMU, or none, translates it.
 */
IOMMUMemoryRegion *nic_ioguard_region(
    IoguardNicState *s, const struct IoguardIommuMemoryRegionClass **k);
/* Empties the device IOTLB (reset). */
void nic_atc_flush(IoguardNicState *s);
/* After a configuration write: ATS turned on or off empties it too. */
void nic_ats_config_written(IoguardNicState *s, uint32_t address, int len);

/* nic-pri.c: PASID and PRI (pri=on). */

/* Adds the PASID and PRI capabilities after ATS's. */
bool nic_pri_realize(IoguardNicState *s, Error **errp);
/* Whether the guest enabled PASIDs (the prefix may be sent). */
bool nic_pasid_enabled(IoguardNicState *s);
/*
 * The test engine's translation of addr (write or not) was refused: sends
 * a page request if PRI is enabled and the operation has tries left. True
 * if the engine is to wait for the answer (nic_te_bh runs again then).
 */
bool nic_pri_request(IoguardNicState *s, uint64_t addr, bool write);
/* After a configuration write: PRI enabled, reset, status bits. */
void nic_pri_config_written(IoguardNicState *s, uint32_t address, int len);
/* Unrealize: the IOMMU forgets where our answers went. */
void nic_pri_exit(IoguardNicState *s);
/* Device reset: no request outstanding, PRI stopped. */
void nic_pri_reset(IoguardNicState *s);

#endif
