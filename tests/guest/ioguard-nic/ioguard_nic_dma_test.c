// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ioguard_nic: the debugfs harness of ioguard-nic's DMA test engine,
 * /sys/kernel/debug/ioguard_nic/<pci device>/dma_test (commands below).
 *
 * The engine DMAs wherever it is told; the harness adds the experiments
 * the guest tests run through it (an overrun past a mapping, a DMA after
 * unmap, a scatterlist the IOMMU merges, a ring stopped behind the
 * driver's back). It is its own file because none of it is on the
 * driver's data path.
 */

#include <linux/crc32.h>
#include <linux/debugfs.h>
#include <linux/dma-mapping.h>
#include <linux/gfp.h>
#include <linux/iommu.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/rtnetlink.h>
#include <linux/sched/mm.h>
#include <linux/workqueue.h>
#include <linux/scatterlist.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/version.h>

#include "ioguard_nic.h"

/* The test engine is given this long before we declare it stuck. */
#define IOGUARD_TE_TIMEOUT      (5 * HZ)
/* The overrun test keeps looking this long for a guard page (see there). */
#define IOGUARD_GUARD_TRIES     4096
#define IOGUARD_SG_MAX_PAGES    64

struct ioguard_te_result {
	u32 status;
	u32 code;               /* NIC_ERR_TE_* when status has ERROR */
	u32 crc;
	u32 done;
	u32 err_addr;
};

/*
 * The test engine (debugfs)
 *
 * Write a command to dma_test, read the file for the result of the last one:
 *   read ADDR LEN            ok op=read len=N crc=0x........
 *   write ADDR LEN PATTERN   ok op=write len=N crc=0x00000000
 *   copy SRC DST LEN         ok op=copy len=N crc=0x........
 *                            error op=OP code=N addr=0x........ done=N
 *   overrun                  overrun iova=.. phys=.. done=N err_addr=..
 *                                    first_page_written=0|1
 *                                    second_page_intact=0|1
 *   after-unmap              after-unmap iova=.. phys=.. first=ok|error
 *                                    second=ok|error code=N same_data=0|1
 *   sg PAGES                 sg pages=N segments=M crc_ok=0|1 first_iova=..
 *   ring-stop tx|rx          ring-stop tx|rx: recovery scheduled
 *   sva-read ADDR LEN        ok op=sva-read len=N crc=0x........ pasid=P
 *   sva-write ADDR LEN PATTERN
 *                            ok op=sva-write len=N crc=0x00000000 pasid=P
 *                            (error ... pasid=P, as above)
 * Addresses are the device's raw 32-bit DMA addresses, except for sva-*:
 * there they are the writing process's own (virtual) addresses, which the
 * device reaches through the process's PASID (shared virtual addressing),
 * its pages made present by page requests as it touches them (code 10,
 * te-page, when the process has no such page). ring-stop disables a
 * ring behind the driver's back, as the device does when it cannot reach a
 * descriptor, so that the recovery path can be tested without an IOMMU
 * fault-injection rule.
 */

static const char *const ioguard_te_op_names[] = {
	[NIC_TE_OP_READ] = "read",
	[NIC_TE_OP_WRITE] = "write",
	[NIC_TE_OP_COPY] = "copy",
};

/*
 * Run one engine command and wait for it. 0 with *res filled in (the
 * command itself may have failed: res->status has ERROR), or -ETIMEDOUT
 * after the device was reset. Under te_lock.
 */
static int ioguard_te_run(struct ioguard_nic *nic, u32 op, u32 src, u32 dst,
			  u32 len, u32 pattern, struct ioguard_te_result *res)
{
	lockdep_assert_held(&nic->te_lock);
	reinit_completion(&nic->te_done);
	WRITE_ONCE(nic->te_err_code, NIC_ERR_NONE);
	ioguard_wr(nic, NIC_REG_TE_SRC, src);
	ioguard_wr(nic, NIC_REG_TE_DST, dst);
	ioguard_wr(nic, NIC_REG_TE_LEN, len);
	ioguard_wr(nic, NIC_REG_TE_PATTERN, pattern);
	ioguard_wr(nic, NIC_REG_TE_CMD, op);

	wait_for_completion_timeout(&nic->te_done, IOGUARD_TE_TIMEOUT);
	/* TE_STATUS is the truth, even if the interrupt went missing. */
	res->status = ioguard_rd(nic, NIC_REG_TE_STATUS);
	if (!(res->status & NIC_TE_STATUS_DONE)) {
		/*
		 * The engine may still DMA into the caller's buffers: stop
		 * it with a reset before they are unmapped and freed.
		 */
		rtnl_lock();
		ioguard_reset(nic, "test engine timeout");
		rtnl_unlock();
		return -ETIMEDOUT;
	}
	res->crc = ioguard_rd(nic, NIC_REG_TE_CRC);
	res->done = ioguard_rd(nic, NIC_REG_TE_DONE_LEN);
	res->err_addr = ioguard_rd(nic, NIC_REG_TE_ERR_ADDR);
	res->code = NIC_ERR_NONE;
	if (res->status & NIC_TE_STATUS_ERROR) {
		u64 end_src = (u64)src + len, end_dst = (u64)dst + len;
		bool bad_args = op < NIC_TE_OP_READ || op > NIC_TE_OP_COPY ||
				!len || len > NIC_TE_MAX_LEN ||
				(op != NIC_TE_OP_WRITE && end_src > SZ_4G) ||
				(op != NIC_TE_OP_READ && end_dst > SZ_4G);

		/*
		 * The interrupt handler took the code from ERR_CODE; if
		 * another error was latched there first, tell from the
		 * arguments, as the device does.
		 */
		res->code = READ_ONCE(nic->te_err_code);
		if (res->code == NIC_ERR_NONE)
			res->code = bad_args ? NIC_ERR_TE_ARGS : NIC_ERR_TE_DMA;
		if (res->code == NIC_ERR_TE_DMA)
			atomic64_inc(&nic->dma_errors);
	}
	return 0;
}

static void ioguard_te_raw(struct ioguard_nic *nic, u32 op, u32 src, u32 dst,
			   u32 len, u32 pattern)
{
	struct ioguard_te_result res;
	const char *name = ioguard_te_op_names[op];

	if (ioguard_te_run(nic, op, src, dst, len, pattern, &res)) {
		snprintf(nic->te_result, sizeof(nic->te_result), "error timeout");
		return;
	}
	if (res.status & NIC_TE_STATUS_ERROR)
		snprintf(nic->te_result, sizeof(nic->te_result),
			 "error op=%s code=%u addr=0x%08x done=%u",
			 name, res.code, res.err_addr, res.done);
	else
		snprintf(nic->te_result, sizeof(nic->te_result),
			 "ok op=%s len=%u crc=0x%08x", name, res.done, res.crc);
}

/*
 * Shared virtual addressing: the engine's requests carry the PASID of the
 * writing process's address space, bound for this one command. A page it
 * touches that is not present is a page request (PRI), which the IOMMU
 * driver's I/O page fault handler answers after faulting the page in.
 * (Linux 6.12's IOMMU API; the module also builds for 6.1, without it.)
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
void ioguard_sva_enable(struct ioguard_nic *nic)
{
	int err;

	if (!pci_find_ext_capability(nic->pdev, PCI_EXT_CAP_ID_PASID))
		return;
	err = iommu_dev_enable_feature(nic->dev, IOMMU_DEV_FEAT_IOPF);
	if (err) {
		dev_info(nic->dev, "no shared virtual addressing: IOPF: %d\n",
			 err);
		return;
	}
	err = iommu_dev_enable_feature(nic->dev, IOMMU_DEV_FEAT_SVA);
	if (err) {
		iommu_dev_disable_feature(nic->dev, IOMMU_DEV_FEAT_IOPF);
		dev_info(nic->dev, "no shared virtual addressing: SVA: %d\n",
			 err);
		return;
	}
	nic->sva = true;
	dev_info(nic->dev, "shared virtual addressing: PASID %s, PRI %s\n",
		 nic->pdev->pasid_enabled ? "on" : "off",
		 nic->pdev->pri_enabled ? "on" : "off");
}

void ioguard_sva_disable(struct ioguard_nic *nic)
{
	if (!nic->sva)
		return;
	iommu_dev_disable_feature(nic->dev, IOMMU_DEV_FEAT_SVA);
	iommu_dev_disable_feature(nic->dev, IOMMU_DEV_FEAT_IOPF);
	nic->sva = false;
}

/*
 * The bond of the writing process's address space to the device for one
 * command: iommu_sva_bind_device()'s, or, where the kernel refuses SVA as
 * a whole (x86 kernels since the 2025 stable fix "iommu: disable SVA when
 * CONFIG_X86 is set" say -EOPNOTSUPP, Debian's 6.12 among them), the same
 * steps done here: a global PASID, the IOMMU driver's own SVA domain for
 * the mm (amd_iommu_domain_alloc_sva: its GCR3 entry and mmu notifier),
 * attached at the PASID, and an I/O page fault handler that faults pages
 * in as the core's iommu_sva_handle_mm() does. Everything the IOMMU sees
 * is what Linux's AMD driver does for SVA.
 */
struct ioguard_sva_bond {
	struct iommu_sva *kernel;       /* iommu_sva_bind_device()'s */
	struct iommu_domain *domain;    /* else ours */
	struct iommu_attach_handle handle;
	ioasid_t pasid;
};

/* As iommu_sva_handle_mm(): fault the page in for the device. */
static enum iommu_page_response_code
ioguard_sva_fault_in(const struct iommu_fault *fault, struct mm_struct *mm)
{
	const struct iommu_fault_page_request *prm = &fault->prm;
	enum iommu_page_response_code status = IOMMU_PAGE_RESP_INVALID;
	unsigned int fault_flags = FAULT_FLAG_REMOTE, access = 0;
	struct vm_area_struct *vma;
	vm_fault_t ret;

	if (!(prm->flags & IOMMU_FAULT_PAGE_REQUEST_PASID_VALID) ||
	    !mmget_not_zero(mm))
		return status;
	mmap_read_lock(mm);
	vma = vma_lookup(mm, prm->addr);
	if (!vma)
		goto out;               /* nothing there: refused */
	if (prm->perm & IOMMU_FAULT_PERM_READ)
		access |= VM_READ;
	if (prm->perm & IOMMU_FAULT_PERM_WRITE) {
		access |= VM_WRITE;
		fault_flags |= FAULT_FLAG_WRITE;
	}
	if (prm->perm & IOMMU_FAULT_PERM_EXEC) {
		access |= VM_EXEC;
		fault_flags |= FAULT_FLAG_INSTRUCTION;
	}
	if (!(prm->perm & IOMMU_FAULT_PERM_PRIV))
		fault_flags |= FAULT_FLAG_USER;
	if (access & ~vma->vm_flags)
		goto out;
	ret = handle_mm_fault(vma, prm->addr, fault_flags, NULL);
	status = ret & VM_FAULT_ERROR ? IOMMU_PAGE_RESP_INVALID :
					IOMMU_PAGE_RESP_SUCCESS;
out:
	mmap_read_unlock(mm);
	mmput(mm);
	return status;
}

static void ioguard_sva_fault_work(struct work_struct *work)
{
	struct iopf_group *group = container_of(work, struct iopf_group, work);
	enum iommu_page_response_code status = IOMMU_PAGE_RESP_SUCCESS;
	struct iopf_fault *iopf;

	list_for_each_entry(iopf, &group->faults, list) {
		if (status != IOMMU_PAGE_RESP_SUCCESS)
			break;
		status = ioguard_sva_fault_in(&iopf->fault,
					      group->attach_handle->domain->mm);
	}
	iopf_group_response(group, status);
	iopf_free_group(group);
}

static int ioguard_sva_iopf_handler(struct iopf_group *group)
{
	INIT_WORK(&group->work, ioguard_sva_fault_work);
	return queue_work(system_unbound_wq, &group->work) ? 0 : -EBUSY;
}

static int ioguard_sva_bind(struct ioguard_nic *nic, struct ioguard_sva_bond *b)
{
	struct device *dev = nic->dev;
	const struct iommu_ops *ops = dev->iommu->iommu_dev->ops;
	struct iommu_domain *domain;
	int err;

	memset(b, 0, sizeof(*b));
	b->kernel = iommu_sva_bind_device(dev, current->mm);
	if (!IS_ERR(b->kernel)) {
		b->pasid = iommu_sva_get_pasid(b->kernel);
		return 0;
	}
	err = PTR_ERR(b->kernel);
	b->kernel = NULL;
	if (err != -EOPNOTSUPP || !ops->domain_alloc_sva)
		return err;

	b->pasid = iommu_alloc_global_pasid(dev);
	if (b->pasid == IOMMU_PASID_INVALID)
		return -ENOSPC;
	domain = ops->domain_alloc_sva(dev, current->mm);
	if (IS_ERR(domain)) {
		err = PTR_ERR(domain);
		goto free_pasid;
	}
	/* As the core's iommu_sva_domain_alloc(). */
	domain->type = IOMMU_DOMAIN_SVA;
	mmgrab(current->mm);
	domain->mm = current->mm;
	domain->owner = ops;
	domain->iopf_handler = ioguard_sva_iopf_handler;
	err = iommu_attach_device_pasid(domain, dev, b->pasid, &b->handle);
	if (err) {
		iommu_domain_free(domain);
		goto free_pasid;
	}
	b->domain = domain;
	return 0;
free_pasid:
	iommu_free_global_pasid(b->pasid);
	return err;
}

static void ioguard_sva_unbind(struct ioguard_nic *nic,
			       struct ioguard_sva_bond *b)
{
	if (b->kernel) {
		iommu_sva_unbind_device(b->kernel);
		return;
	}
	iommu_detach_device_pasid(b->domain, nic->dev, b->pasid);
	iommu_domain_free(b->domain);
	iommu_free_global_pasid(b->pasid);
}

static void ioguard_te_sva(struct ioguard_nic *nic, u32 op, u32 addr, u32 len,
			   u32 pattern)
{
	const char *name = op == NIC_TE_OP_READ ? "sva-read" : "sva-write";
	struct ioguard_te_result res;
	struct ioguard_sva_bond bond;
	const char *by;
	int err;

	if (!nic->sva) {
		snprintf(nic->te_result, sizeof(nic->te_result),
			 "error op=%s: no shared virtual addressing", name);
		return;
	}
	err = ioguard_sva_bind(nic, &bond);
	if (err) {
		snprintf(nic->te_result, sizeof(nic->te_result),
			 "error op=%s: bind %d", name, err);
		return;
	}
	by = bond.kernel ? "kernel" : "driver";
	ioguard_wr(nic, NIC_REG_TE_PASID, NIC_TE_PASID_VALID | bond.pasid);
	err = ioguard_te_run(nic, op, op == NIC_TE_OP_READ ? addr : 0,
			     op == NIC_TE_OP_WRITE ? addr : 0, len, pattern,
			     &res);
	ioguard_wr(nic, NIC_REG_TE_PASID, 0);
	ioguard_sva_unbind(nic, &bond);
	if (err)
		snprintf(nic->te_result, sizeof(nic->te_result),
			 "error op=%s timeout pasid=%u bind=%s", name,
			 bond.pasid, by);
	else if (res.status & NIC_TE_STATUS_ERROR)
		snprintf(nic->te_result, sizeof(nic->te_result),
			 "error op=%s code=%u addr=0x%08x done=%u pasid=%u bind=%s",
			 name, res.code, res.err_addr, res.done, bond.pasid, by);
	else
		snprintf(nic->te_result, sizeof(nic->te_result),
			 "ok op=%s len=%u crc=0x%08x pasid=%u bind=%s", name,
			 res.done, res.crc, bond.pasid, by);
}
#else
void ioguard_sva_enable(struct ioguard_nic *nic)
{
}

void ioguard_sva_disable(struct ioguard_nic *nic)
{
}

static void ioguard_te_sva(struct ioguard_nic *nic, u32 op, u32 addr, u32 len,
			   u32 pattern)
{
	snprintf(nic->te_result, sizeof(nic->te_result),
		 "error op=sva: needs Linux 6.12");
}
#endif

static bool ioguard_mem_is(const u8 *p, u8 val, size_t len)
{
	return !memchr_inv(p, val, len);
}

/*
 * overrun: the engine writes 8 KiB from the start of a buffer of which only
 * the first 4 KiB page is mapped. Behind an IOMMU the second page of the
 * transfer must fault; without one the device silently writes the
 * physically next page.
 *
 * The page after our IOVA must be one that no one else uses, or the overrun
 * would land in someone else's buffer. The IOVA allocator gives no such
 * promise, so we map a guard page (read-only for the device: its write
 * faults, and the IOVA stays ours until the test is over) next to a mapping
 * of our page, trying until one of our page's mappings sits right below one
 * of the guard's (allocations go downwards, so that takes few tries once the
 * allocator's caches are drained).
 */
static void ioguard_te_overrun(struct ioguard_nic *nic)
{
	struct device *dev = nic->dev;
	struct iommu_domain *domain = iommu_get_domain_for_dev(dev);
	dma_addr_t *buf_maps = NULL, *guard_maps = NULL, iova = 0;
	unsigned int nbuf = 0, nguard = 0, i, j;
	struct page *pair = NULL, *guard = NULL;
	struct ioguard_te_result res;
	phys_addr_t phys;
	bool translated, found = false;
	u8 *va;

	/*
	 * Below 4 GiB: without an IOMMU the DMA layer would otherwise bounce
	 * a high page through swiotlb, and the overrun would hit the bounce
	 * pool instead of our second page.
	 */
	pair = alloc_pages(GFP_KERNEL | GFP_DMA32 | __GFP_ZERO, 1);
	guard = alloc_page(GFP_KERNEL | GFP_DMA32 | __GFP_ZERO);
	buf_maps = kvcalloc(IOGUARD_GUARD_TRIES, sizeof(*buf_maps), GFP_KERNEL);
	guard_maps = kvcalloc(IOGUARD_GUARD_TRIES, sizeof(*guard_maps),
			      GFP_KERNEL);
	if (!pair || !guard || !buf_maps || !guard_maps) {
		snprintf(nic->te_result, sizeof(nic->te_result),
			 "error overrun: out of memory");
		goto out_free;
	}
	phys = page_to_phys(pair);
	va = page_address(pair);

	buf_maps[0] = dma_map_page(dev, pair, 0, PAGE_SIZE, DMA_BIDIRECTIONAL);
	if (dma_mapping_error(dev, buf_maps[0]))
		goto map_failed;
	nbuf = 1;
	iova = buf_maps[0];
	/*
	 * Only the DMA API's IOMMU domains allocate IOVAs; without one (or in
	 * an identity domain) the DMA address is the physical one.
	 */
	translated = domain && iommu_is_dma_domain(domain);

	while (translated && !found && nguard < IOGUARD_GUARD_TRIES) {
		dma_addr_t g = dma_map_page(dev, guard, 0, PAGE_SIZE,
					    DMA_TO_DEVICE);
		dma_addr_t b;

		if (dma_mapping_error(dev, g))
			goto map_failed;
		guard_maps[nguard++] = g;
		for (i = 0; i < nbuf && !found; i++)
			if (buf_maps[i] + PAGE_SIZE == g) {
				iova = buf_maps[i];
				found = true;
			}
		if (found || nbuf == IOGUARD_GUARD_TRIES)
			break;
		b = dma_map_page(dev, pair, 0, PAGE_SIZE, DMA_BIDIRECTIONAL);
		if (dma_mapping_error(dev, b))
			goto map_failed;
		buf_maps[nbuf++] = b;
		for (j = 0; j < nguard && !found; j++)
			if (b + PAGE_SIZE == guard_maps[j]) {
				iova = b;
				found = true;
			}
	}
	if (translated && !found) {
		snprintf(nic->te_result, sizeof(nic->te_result),
			 "error overrun: no free IOVA page next to the buffer");
		goto out_unmap;
	}
	if (translated)
		dev_dbg(dev, "overrun: buffer at 0x%llx, guard above it after %u tries\n",
			(u64)iova, nguard);

	if (ioguard_te_run(nic, NIC_TE_OP_WRITE, 0, lower_32_bits(iova),
			   2 * PAGE_SIZE, 0x5a, &res)) {
		snprintf(nic->te_result, sizeof(nic->te_result), "error timeout");
		goto out_unmap;
	}
	for (i = 0; i < nbuf; i++)
		dma_unmap_page(dev, buf_maps[i], PAGE_SIZE, DMA_BIDIRECTIONAL);
	for (j = 0; j < nguard; j++)
		dma_unmap_page(dev, guard_maps[j], PAGE_SIZE, DMA_TO_DEVICE);
	nbuf = nguard = 0;

	if (translated && !ioguard_mem_is(page_address(guard), 0, PAGE_SIZE))
		dev_warn(dev, "overrun: the device wrote a page mapped read-only\n");
	snprintf(nic->te_result, sizeof(nic->te_result),
		 "overrun iova=0x%08llx phys=0x%llx done=%u err_addr=0x%08x first_page_written=%d second_page_intact=%d",
		 (u64)iova, (u64)phys, res.done, res.err_addr,
		 ioguard_mem_is(va, 0x5a, PAGE_SIZE),
		 ioguard_mem_is(va + PAGE_SIZE, 0, PAGE_SIZE));
	goto out_free;

map_failed:
	snprintf(nic->te_result, sizeof(nic->te_result),
		 "error overrun: DMA mapping failed");
out_unmap:
	for (i = 0; i < nbuf; i++)
		dma_unmap_page(dev, buf_maps[i], PAGE_SIZE, DMA_BIDIRECTIONAL);
	for (j = 0; j < nguard; j++)
		dma_unmap_page(dev, guard_maps[j], PAGE_SIZE, DMA_TO_DEVICE);
out_free:
	kvfree(buf_maps);
	kvfree(guard_maps);
	if (guard)
		__free_page(guard);
	if (pair)
		__free_pages(pair, 1);
}

/*
 * after-unmap: the bug a DMA verifier is for, made on purpose. Map a page
 * for the device, let the engine read it, unmap the page, then let the
 * engine read the same DMA address again, as a device still holding a
 * stale buffer address would. Behind an IOMMU in strict mode the second
 * read faults; in lazy mode the IOMMU's TLB still holds the translation
 * until the next flush, so the read succeeds (ioguard-iommu,verifier=on
 * flags it); without an IOMMU it succeeds too. The page stays ours until
 * both reads are over.
 */
static void ioguard_te_after_unmap(struct ioguard_nic *nic)
{
	struct device *dev = nic->dev;
	struct ioguard_te_result first, second;
	struct page *page = alloc_page(GFP_KERNEL | GFP_DMA32);
	dma_addr_t iova;
	int err;

	if (!page) {
		snprintf(nic->te_result, sizeof(nic->te_result),
			 "error after-unmap: out of memory");
		return;
	}
	memset(page_address(page), 0xa5, PAGE_SIZE);
	iova = dma_map_page(dev, page, 0, PAGE_SIZE, DMA_TO_DEVICE);
	if (dma_mapping_error(dev, iova)) {
		snprintf(nic->te_result, sizeof(nic->te_result),
			 "error after-unmap: DMA mapping failed");
		goto out;
	}
	err = ioguard_te_run(nic, NIC_TE_OP_READ, lower_32_bits(iova), 0,
			     PAGE_SIZE, 0, &first);
	dma_unmap_page(dev, iova, PAGE_SIZE, DMA_TO_DEVICE);
	if (!err)
		err = ioguard_te_run(nic, NIC_TE_OP_READ, lower_32_bits(iova), 0,
				     PAGE_SIZE, 0, &second);
	if (err) {
		snprintf(nic->te_result, sizeof(nic->te_result),
			 "error timeout");
		goto out;
	}
	snprintf(nic->te_result, sizeof(nic->te_result),
		 "after-unmap iova=0x%08llx phys=0x%llx first=%s second=%s code=%u same_data=%d",
		 (u64)iova, (u64)page_to_phys(page),
		 first.status & NIC_TE_STATUS_ERROR ? "error" : "ok",
		 second.status & NIC_TE_STATUS_ERROR ? "error" : "ok",
		 second.code,
		 !(second.status & NIC_TE_STATUS_ERROR) &&
		 second.crc == first.crc);
out:
	__free_page(page);
}

/* CRC-32 (zlib's) of bytes [off, off + len) of the pages laid end to end. */
static u32 ioguard_pages_crc(struct page **pages, size_t off, size_t len)
{
	u32 crc = ~0u;

	while (len) {
		size_t in = off % PAGE_SIZE;
		size_t n = min_t(size_t, len, PAGE_SIZE - in);

		crc = crc32_le(crc, (u8 *)page_address(pages[off / PAGE_SIZE]) + in,
			       n);
		off += n;
		len -= n;
	}
	return crc ^ ~0u;
}

/*
 * sg: map PAGES separate, physically discontiguous pages as one scatterlist
 * and read every resulting DMA segment with the engine. An IOMMU that
 * translates puts them in one IOVA range: one segment.
 */
static void ioguard_te_sg(struct ioguard_nic *nic, unsigned int npages)
{
	struct device *dev = nic->dev;
	struct page **pages, **spare;   /* spare: rejected, freed at the end */
	unsigned int nspare = 0, i, k;
	struct scatterlist *sgl = NULL, *s;
	int count = 0;
	bool crc_ok = true;
	size_t off = 0;
	u32 seed = 0x10a1u * npages;

	pages = kcalloc(npages, sizeof(*pages), GFP_KERNEL);
	spare = kcalloc(2 * npages, sizeof(*spare), GFP_KERNEL);
	sgl = kcalloc(npages, sizeof(*sgl), GFP_KERNEL);
	if (!pages || !spare || !sgl)
		goto nomem;
	for (i = 0; i < npages; i++) {
		struct page *p = alloc_page(GFP_KERNEL);

		while (p && i && page_to_pfn(p) == page_to_pfn(pages[i - 1]) + 1 &&
		       nspare < 2 * npages) {
			spare[nspare++] = p;
			p = alloc_page(GFP_KERNEL);
		}
		if (!p)
			goto nomem;
		pages[i] = p;
		/* A pattern of our own, so a CRC match means these bytes. */
		for (k = 0; k < PAGE_SIZE / 4; k++) {
			seed = seed * 1664525u + 1013904223u;
			((u32 *)page_address(p))[k] = seed;
		}
	}
	for (i = 1; i < npages; i++)
		if (page_to_pfn(pages[i]) == page_to_pfn(pages[i - 1]) + 1)
			dev_warn(dev, "sg: pages %u and %u are contiguous\n",
				 i - 1, i);

	sg_init_table(sgl, npages);
	for (i = 0; i < npages; i++)
		sg_set_page(&sgl[i], pages[i], PAGE_SIZE, 0);
	count = dma_map_sg(dev, sgl, npages, DMA_TO_DEVICE);
	if (!count) {
		snprintf(nic->te_result, sizeof(nic->te_result),
			 "error sg: DMA mapping failed");
		goto out;
	}

	for_each_sg(sgl, s, count, k) {
		struct ioguard_te_result res;
		u32 len = sg_dma_len(s);
		u32 want = ioguard_pages_crc(pages, off, len);

		if (ioguard_te_run(nic, NIC_TE_OP_READ, lower_32_bits(sg_dma_address(s)),
				   0, len, 0, &res)) {
			dma_unmap_sg(dev, sgl, npages, DMA_TO_DEVICE);
			snprintf(nic->te_result, sizeof(nic->te_result),
				 "error timeout");
			goto out;
		}
		if ((res.status & NIC_TE_STATUS_ERROR) || res.crc != want) {
			dev_info(dev, "sg: segment %u at 0x%llx+%u: %s crc 0x%08x, CPU 0x%08x\n",
				 k, (u64)sg_dma_address(s), len,
				 res.status & NIC_TE_STATUS_ERROR ? "error," : "",
				 res.crc, want);
			crc_ok = false;
		}
		off += len;
	}
	if (off != (size_t)npages * PAGE_SIZE)
		crc_ok = false;
	snprintf(nic->te_result, sizeof(nic->te_result),
		 "sg pages=%u segments=%d crc_ok=%d first_iova=0x%08llx",
		 npages, count, crc_ok, (u64)sg_dma_address(sgl));
	dma_unmap_sg(dev, sgl, npages, DMA_TO_DEVICE);
	goto out;

nomem:
	snprintf(nic->te_result, sizeof(nic->te_result),
		 "error sg: out of memory");
out:
	for (i = 0; pages && i < npages; i++)
		if (pages[i])
			__free_page(pages[i]);
	for (i = 0; i < nspare; i++)
		__free_page(spare[i]);
	kfree(sgl);
	kfree(spare);
	kfree(pages);
}

static void ioguard_ring_stop(struct ioguard_nic *nic, bool tx)
{
	unsigned long flags;

	if (!READ_ONCE(nic->rings_up)) {
		snprintf(nic->te_result, sizeof(nic->te_result),
			 "error ring-stop: the interface is down");
		return;
	}
	spin_lock_irqsave(&nic->reg_lock, flags);
	ioguard_wr(nic, NIC_REG_CTRL,
		   nic->ctrl & ~(tx ? NIC_CTRL_TX_EN : NIC_CTRL_RX_EN));
	spin_unlock_irqrestore(&nic->reg_lock, flags);
	schedule_work(&nic->err_work);
	snprintf(nic->te_result, sizeof(nic->te_result),
		 "ring-stop %s: recovery scheduled", tx ? "tx" : "rx");
}

/* Numbers (0x-hex or decimal) separated by blanks; how many, or -EINVAL. */
static int ioguard_parse_args(char *rest, u32 *args, int max)
{
	char *tok;
	int n = 0;

	while ((tok = strsep(&rest, " \t"))) {
		if (!*tok)
			continue;
		if (n == max || kstrtou32(tok, 0, &args[n]))
			return -EINVAL;
		n++;
	}
	return n;
}

static ssize_t ioguard_dma_test_write(struct file *file,
				      const char __user *ubuf, size_t count,
				      loff_t *ppos)
{
	struct ioguard_nic *nic = file->private_data;
	char line[96], *rest, *cmd;
	u32 a[3] = {};
	int n;

	if (count >= sizeof(line))
		return -EINVAL;
	if (copy_from_user(line, ubuf, count))
		return -EFAULT;
	line[count] = 0;
	rest = strim(line);
	cmd = strsep(&rest, " \t");
	rest = rest ? strim(rest) : "";

	mutex_lock(&nic->te_lock);
	if (!strcmp(cmd, "ring-stop")) {
		n = !strcmp(rest, "tx") || !strcmp(rest, "rx") ? 0 : -EINVAL;
		if (!n)
			ioguard_ring_stop(nic, rest[0] == 't');
		goto out;
	}
	n = ioguard_parse_args(rest, a, ARRAY_SIZE(a));
	if (n == 2 && !strcmp(cmd, "read"))
		ioguard_te_raw(nic, NIC_TE_OP_READ, a[0], 0, a[1], 0);
	else if (n == 3 && !strcmp(cmd, "write"))
		ioguard_te_raw(nic, NIC_TE_OP_WRITE, 0, a[0], a[1], a[2]);
	else if (n == 3 && !strcmp(cmd, "copy"))
		ioguard_te_raw(nic, NIC_TE_OP_COPY, a[0], a[1], a[2], 0);
	else if (n == 0 && !strcmp(cmd, "overrun"))
		ioguard_te_overrun(nic);
	else if (n == 0 && !strcmp(cmd, "after-unmap"))
		ioguard_te_after_unmap(nic);
	else if (n == 2 && !strcmp(cmd, "sva-read"))
		ioguard_te_sva(nic, NIC_TE_OP_READ, a[0], a[1], 0);
	else if (n == 3 && !strcmp(cmd, "sva-write"))
		ioguard_te_sva(nic, NIC_TE_OP_WRITE, a[0], a[1], a[2]);
	else if (n == 1 && !strcmp(cmd, "sg") && a[0] >= 1 &&
		 a[0] <= IOGUARD_SG_MAX_PAGES)
		ioguard_te_sg(nic, a[0]);
	else
		n = -EINVAL;
out:
	if (n < 0)
		snprintf(nic->te_result, sizeof(nic->te_result),
			 "error usage: read ADDR LEN | write ADDR LEN PATTERN | copy SRC DST LEN | overrun | after-unmap | sg PAGES(1..%d) | ring-stop tx|rx | sva-read ADDR LEN | sva-write ADDR LEN PATTERN",
			 IOGUARD_SG_MAX_PAGES);
	mutex_unlock(&nic->te_lock);
	return n < 0 ? -EINVAL : count;
}

static ssize_t ioguard_dma_test_read(struct file *file, char __user *ubuf,
				     size_t count, loff_t *ppos)
{
	struct ioguard_nic *nic = file->private_data;
	char line[sizeof(nic->te_result) + 1];
	int len;

	mutex_lock(&nic->te_lock);
	len = scnprintf(line, sizeof(line), "%s\n", nic->te_result);
	mutex_unlock(&nic->te_lock);
	return simple_read_from_buffer(ubuf, count, ppos, line, len);
}

const struct file_operations ioguard_dma_test_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.read = ioguard_dma_test_read,
	.write = ioguard_dma_test_write,
	.llseek = default_llseek,
};
