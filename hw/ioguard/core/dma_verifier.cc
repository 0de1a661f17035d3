// The DMA verifier (property verifier=on): DMA that a cached translation
// lets through is checked against a fresh walk of the guest's page tables.
// When the tables no longer grant it (the driver unmapped or remapped the
// IOVA and has not invalidated yet: the window lazy invalidation opens, or
// a device using a buffer after its unmap), the DMA still goes where the
// stale entry says, as on real hardware, and the finding becomes a fault
// record and a LOG_GUEST_ERROR line. The guest sees nothing of it.
#include "iommu.hh"
#include "page_walker.hh"

namespace ioguard {

namespace {

// Findings on the same page by the same requester closer together than
// this are one (a DMA of many bytes is many translations).
constexpr uint64_t kFindingCoalesceNs = 1000000;

unsigned perm_bits(bool read, bool write)
{
    return (read ? IOGUARD_PERM_READ : 0) | (write ? IOGUARD_PERM_WRITE : 0);
}

const char *access_name(unsigned perm)
{
    return perm & IOGUARD_PERM_WRITE ? "write" : "read";
}

} // namespace

void Iommu::verify_cached_translation(uint16_t devid,
                                      const DeviceTableEntry &dte,
                                      uint64_t iova, unsigned perm,
                                      const IotlbEntry &cached)
{
    const uint64_t cached_mask = (uint64_t{1} << cached.page_shift) - 1;
    const WalkResult now = walk_v1(host_, dte.page_table_root(), dte.mode(), iova);
    StaleUse use{};
    use.devid = devid;
    use.domain = dte.domain_id();
    use.iova = iova;
    use.access = perm;
    use.stale_target = cached.page_base + (iova & cached_mask);
    use.stale_perm = perm_bits(cached.read, cached.write);
    use.now_mapped = now.status == WalkResult::Status::Ok;
    if (use.now_mapped) {
        use.current_target = now.page_base + (iova & (now.page_size - 1));
        use.current_perm = perm_bits(now.read && dte.read_allowed(),
                                     now.write && dte.write_allowed());
        if (use.current_target == use.stale_target &&
            (use.current_perm & perm) == perm) {
            return;     // the tables still say so
        }
    }
    report_stale_use(use);
}

void Iommu::report_stale_use(const StaleUse &use)
{
    {
        std::lock_guard<std::mutex> guard(lock_);
        const uint64_t now = host_.now_ns();
        const StaleUse &l = last_stale_use_;
        if (l.devid == use.devid && (l.iova >> 12) == (use.iova >> 12) &&
            l.access == use.access && l.now_mapped == use.now_mapped &&
            now - last_stale_use_ns_ < kFindingCoalesceNs) {
            return;
        }
        last_stale_use_ = use;
        last_stale_use_ns_ = now;
        fault_records_.stale_use(use, now);
    }
    const unsigned bus = use.devid >> 8, dev = (use.devid >> 3) & 0x1f,
                   fn = use.devid & 7;
    if (use.now_mapped) {
        guest_error("DMA verifier: requester %02x:%02x.%x %s at IOVA 0x%llx "
                    "went to 0x%llx through a stale IOTLB entry; the page "
                    "table now maps it to 0x%llx (perm %u) and was not "
                    "invalidated", bus, dev, fn, access_name(use.access),
                    (unsigned long long)use.iova,
                    (unsigned long long)use.stale_target,
                    (unsigned long long)use.current_target, use.current_perm);
    } else {
        guest_error("DMA verifier: requester %02x:%02x.%x %s at IOVA 0x%llx "
                    "after it was unmapped (use after unmap): a stale IOTLB "
                    "entry sent it to 0x%llx", bus, dev, fn,
                    access_name(use.access), (unsigned long long)use.iova,
                    (unsigned long long)use.stale_target);
    }
}

} // namespace ioguard
