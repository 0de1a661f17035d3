/*
 * ioguard-nic's PASID and PRI (pri=on, with ats=on): the PCIe PASID and
 * Page Request Interface capabilities, and the test engine's use of them.
 *
 * With PASIDs enabled, TE_PASID puts a PASID prefix on the test engine's
 * requests: its ATS translation requests go to the PASID's tables (shared
 * virtual addressing). With PRI enabled too, a translation the IOMMU
 * refuses becomes a page request (one page, the last of its group); the
 * engine waits (TE_STATUS PAGE_WAIT) for the IOMMU to pass on software's
 * answer (COMPLETE_PPR_REQUEST), then retries the access or, if the page
 * was not granted, stops with te-page. At most NIC_PRI_TRIES requests per
 * operation, so that a page software keeps granting and the IOMMU keeps
 * refusing cannot make the engine loop.
 *
 * QEMU 10.0's PCIIOMMUOps knows neither PASIDs nor PRI, so both go to
 * ioguard-iommu's region class (hw/ioguard/iommu-ats.h). The state of a
 * request is not migrated (like the device IOTLB): a device restored while
 * it waited retries at once.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qapi/error.h"
#include "hw/pci/pcie.h"
#include "hw/ioguard/iommu-ats.h"
#include "nic-internal.h"
#include "trace.h"

/* After the ATS capability (0x100, 8 bytes). */
#define NIC_PASID_CAP_OFFSET 0x108
#define NIC_PRI_CAP_OFFSET 0x110
/* PASID width (20 bits, what the register holds) and outstanding requests */
#define NIC_PASID_WIDTH 20
#define NIC_PRI_MAX_REQUESTS 32
/* Page requests one test engine operation may make. */
#define NIC_PRI_TRIES 8

bool nic_pasid_enabled(IoguardNicState *s)
{
    return s->pasid_cap &&
           (pci_get_word(PCI_DEVICE(s)->config + s->pasid_cap +
                         PCI_PASID_CTRL) & PCI_PASID_CTRL_ENABLE);
}

static bool nic_pri_enabled(IoguardNicState *s)
{
    return s->pri_cap &&
           (pci_get_word(PCI_DEVICE(s)->config + s->pri_cap + PCI_PRI_CTRL) &
            PCI_PRI_CTRL_ENABLE);
}

static void nic_pri_set_status(IoguardNicState *s, uint16_t set,
                               uint16_t clear)
{
    uint8_t *status = PCI_DEVICE(s)->config + s->pri_cap + PCI_PRI_STATUS;

    pci_set_word(status, (pci_get_word(status) & ~clear) | set);
}

/* Stopped: PRI disabled and no request outstanding. */
static void nic_pri_update_stopped(IoguardNicState *s)
{
    bool stopped = !nic_pri_enabled(s) && !s->pri_pending;

    nic_pri_set_status(s, stopped ? PCI_PRI_STATUS_STOPPED : 0,
                       stopped ? 0 : PCI_PRI_STATUS_STOPPED);
}

bool nic_pri_realize(IoguardNicState *s, Error **errp)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint8_t *exp = pdev->config + pdev->exp.exp_cap;

    if (!s->pri) {
        return true;
    }
    if (!s->ats || !pdev->exp.ats_cap) {
        error_setg(errp, "ioguard-nic: pri=on needs ats=on (a page request "
                   "answers a refused ATS translation)");
        return false;
    }
    /* End-end TLP prefixes (the PASID's): Linux enables PASIDs only then. */
    pci_long_test_and_set_mask(exp + PCI_EXP_DEVCAP2,
                               PCI_EXP_DEVCAP2_EE_PREFIX);

    s->pasid_cap = NIC_PASID_CAP_OFFSET;
    pcie_add_capability(pdev, PCI_EXT_CAP_ID_PASID, 1, s->pasid_cap,
                        PCI_EXT_CAP_PASID_SIZEOF);
    pci_set_word(pdev->config + s->pasid_cap + PCI_PASID_CAP,
                 PCI_PASID_CAP_PRIV | NIC_PASID_WIDTH << 8);
    pci_set_word(pdev->wmask + s->pasid_cap + PCI_PASID_CTRL,
                 PCI_PASID_CTRL_ENABLE | PCI_PASID_CTRL_PRIV);

    s->pri_cap = NIC_PRI_CAP_OFFSET;
    pcie_add_capability(pdev, PCI_EXT_CAP_ID_PRI, 1, s->pri_cap,
                        PCI_EXT_CAP_PRI_SIZEOF);
    pci_set_word(pdev->wmask + s->pri_cap + PCI_PRI_CTRL,
                 PCI_PRI_CTRL_ENABLE | PCI_PRI_CTRL_RESET);
    pci_set_word(pdev->w1cmask + s->pri_cap + PCI_PRI_STATUS,
                 PCI_PRI_STATUS_RF | PCI_PRI_STATUS_UPRGI);
    pci_set_long(pdev->config + s->pri_cap + PCI_PRI_MAX_REQ,
                 NIC_PRI_MAX_REQUESTS);
    pci_set_long(pdev->wmask + s->pri_cap + PCI_PRI_ALLOC_REQ, 0xffffffff);
    nic_pri_reset(s);
    return true;
}

void nic_pri_exit(IoguardNicState *s)
{
    const IoguardIommuMemoryRegionClass *k;
    IOMMUMemoryRegion *mr;

    if (!s->pri_cap) {
        return;
    }
    /* (The IOMMU keeps its spaces: a later COMPLETE_PPR_REQUEST for our
     * requester ID must not reach a device that is gone.) */
    mr = nic_ioguard_region(s, &k);
    if (mr) {
        k->forget_device(mr, s);
    }
}

void nic_pri_reset(IoguardNicState *s)
{
    s->pri_pending = false;
    s->pri_refused = false;
    s->pri_tries = 0;
    if (s->pri_cap) {
        /* PRG responses carry the PASID (Linux's pri_tlp: GN=1). */
        nic_pri_set_status(s, PCI_PRI_STATUS_PASID, 0);
        nic_pri_update_stopped(s);
    }
}

void nic_pri_config_written(IoguardNicState *s, uint32_t address, int len)
{
    uint8_t *ctrl;

    if (!s->pri_cap || !ranges_overlap(address, len, s->pri_cap, 8)) {
        return;
    }
    ctrl = PCI_DEVICE(s)->config + s->pri_cap + PCI_PRI_CTRL;
    if (pci_get_word(ctrl) & PCI_PRI_CTRL_RESET) {
        /* Reset (self-clearing, with Enable clear): forget the request
         * and the error bits. */
        pci_set_word(ctrl, pci_get_word(ctrl) & ~PCI_PRI_CTRL_RESET);
        if (!nic_pri_enabled(s)) {
            s->pri_pending = false;
            nic_pri_set_status(s, 0, PCI_PRI_STATUS_RF |
                                     PCI_PRI_STATUS_UPRGI);
        }
    }
    nic_pri_update_stopped(s);
}

/*
 * COMPLETE_PPR_REQUEST's answer, as ioguard-iommu passes it on: from its
 * command processing, so the engine resumes in its bottom half.
 */
static void nic_pri_response(void *opaque, bool pasid_valid, uint32_t pasid,
                             uint16_t group, unsigned code)
{
    IoguardNicState *s = opaque;

    s->page_responses++;
    trace_ioguard_nic_page_response(pasid_valid, pasid, group, code);
    if (!s->pri_pending || group != s->pri_group) {
        /* PCIe: an unexpected PRG index is noted and ignored. */
        qemu_log_mask(LOG_GUEST_ERROR, "ioguard-nic: page request response "
                      "for group 0x%x, which it did not ask\n", group);
        nic_pri_set_status(s, PCI_PRI_STATUS_UPRGI, 0);
        return;
    }
    s->pri_pending = false;
    s->pri_refused = code != IOGUARD_PRG_SUCCESS;
    if (code != IOGUARD_PRG_SUCCESS && code != IOGUARD_PRG_INVALID_REQUEST) {
        /* Response Failure (and the codes PCIe reserves): PRI stops. */
        nic_pri_set_status(s, PCI_PRI_STATUS_RF, 0);
    }
    nic_pri_update_stopped(s);
    qemu_bh_schedule(s->te_bh);
}

bool nic_pri_request(IoguardNicState *s, uint64_t addr, bool write)
{
    uint32_t pasid = s->te_pasid;
    const IoguardIommuMemoryRegionClass *k;
    IOMMUMemoryRegion *mr = nic_ioguard_region(s, &k);
    IoguardPageRequest r;
    unsigned outcome;

    if (!nic_pri_enabled(s) || !mr ||
        (pci_get_word(PCI_DEVICE(s)->config + s->pri_cap + PCI_PRI_STATUS) &
         PCI_PRI_STATUS_RF) ||
        s->pri_tries >= NIC_PRI_TRIES) {
        return false;
    }
    s->pri_tries++;
    s->pri_group = (s->pri_group + 1) & 0x1ff;
    r = (IoguardPageRequest) {
        .pasid_valid = (pasid & NIC_TE_PASID_VALID) && nic_pasid_enabled(s),
        .pasid = pasid & NIC_TE_PASID_MASK,
        .address = addr & ~0xfffULL,
        .perm = write ? IOGUARD_PERM_WRITE : IOGUARD_PERM_READ,
        .privileged = pasid & NIC_TE_PASID_PRIVILEGED,
        .group = s->pri_group,
        .last = true,
    };
    s->page_requests++;
    s->pri_pending = true;
    nic_pri_update_stopped(s);
    outcome = k->page_request(mr, &r, nic_pri_response, s);
    trace_ioguard_nic_page_request(addr, write, s->pri_group, outcome);
    if (outcome == IOGUARD_PAGE_REQUEST_FAILED) {
        /* Nobody will answer: as a Response Failure. */
        s->pri_pending = false;
        nic_pri_set_status(s, PCI_PRI_STATUS_RF, 0);
        nic_pri_update_stopped(s);
        return false;
    }
    /* Answered already (a response from within the request)? Then the
     * bottom half is scheduled; otherwise it will be. */
    return true;
}
