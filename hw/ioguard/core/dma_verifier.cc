#include "dma_verifier.hh"

#include <cstdarg>
#include <cstdio>

#include "device_table.hh"
#include "guest_walker.hh"
#include "iotlb.hh"
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

// What the tables say of iova now: through the host tables, or (pasid
// other than kHostTables) the guest tables of that PASID, for a user
// request or not, without touching their Accessed bits.
bool current_mapping(Host &host, const DeviceTableEntry &dte, uint32_t pasid,
                     uint64_t iova, uint64_t &target, unsigned &perm,
                     bool user = true)
{
    if (pasid != kHostTables) {
        const GuestWalkResult now =
            walk_guest(host, dte, GuestAccess{pasid, iova, false, user, false});
        if (now.status != GuestWalkResult::Status::Ok) {
            return false;
        }
        target = now.page_base + (iova & (now.page_size - 1));
        perm = perm_bits(now.read, now.write);
        return true;
    }
    const WalkResult now = walk_v1(host, dte.page_table_root(), dte.mode(),
                                   iova);
    if (now.status != WalkResult::Status::Ok) {
        return false;
    }
    target = now.page_base + (iova & (now.page_size - 1));
    perm = perm_bits(now.read && dte.read_allowed(),
                     now.write && dte.write_allowed());
    return true;
}

const char *access_name(unsigned perm)
{
    return perm & IOGUARD_PERM_WRITE ? "write" : "read";
}

void guest_error(Host &host, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void guest_error(Host &host, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    host.guest_error(buf);
}

} // namespace

void DmaVerifier::translated(const Translation &t)
{
    if (!t.from_caches || t.perm == IOGUARD_PERM_NONE) {
        return;     // a fresh walk, or a probe that moves no data
    }
    const IotlbEntry &cached = t.entry;
    const uint64_t cached_mask = (uint64_t{1} << cached.page_shift) - 1;
    StaleUse use{};
    use.devid = t.devid;
    use.domain = t.dte.domain_id();
    use.pasid = t.pasid == kHostTables ? -1 : int32_t(t.pasid);
    use.iova = t.iova;
    use.access = t.perm;
    use.stale_target = cached.page_base + (t.iova & cached_mask);
    use.stale_perm = perm_bits(cached.read, cached.write);
    use.now_mapped = current_mapping(host_, t.dte, t.pasid, t.iova,
                                     use.current_target, use.current_perm);
    if (use.now_mapped) {
        if (use.current_target == use.stale_target &&
            (use.current_perm & t.perm) == t.perm) {
            return;     // the tables still say so
        }
    }
    report(use, false);
}

void DmaVerifier::device_iotlb_invalidated(uint16_t devid, uint64_t first,
                                           uint64_t last)
{
    std::lock_guard<std::mutex> guard(invalidations_lock_);
    generation_++;
    invalidations_[generation_ % kInvalidationsKept] = {generation_, devid,
                                                        first, last};
}

uint64_t DmaVerifier::device_iotlb_generation()
{
    std::lock_guard<std::mutex> guard(invalidations_lock_);
    return generation_;
}

bool DmaVerifier::invalidated_since(uint16_t devid, uint64_t generation,
                                    uint64_t iova)
{
    std::lock_guard<std::mutex> guard(invalidations_lock_);
    if (generation_ - generation >= kInvalidationsKept) {
        return false;   // no longer known
    }
    for (uint64_t g = generation + 1; g <= generation_; g++) {
        const DeviceIotlbInvalidation &inv =
            invalidations_[g % kInvalidationsKept];
        if (inv.devid == devid && inv.first <= iova && iova <= inv.last) {
            return true;
        }
    }
    return false;
}

void DmaVerifier::ats_used(uint16_t devid, const IoguardDeviceInfo &dev,
                           const AtsUse &used)
{
    if (!invalidated_since(devid, used.generation, used.iova)) {
        return;
    }
    const uint64_t iova = used.iova;
    StaleUse use{};
    use.devid = devid;
    use.domain = dev.domain_id;
    use.iova = iova;
    use.access = used.access;
    use.stale_target = used.target;
    use.stale_perm = used.access;
    const DeviceTableEntry dte{{dev.raw[0], dev.raw[1], dev.raw[2],
                                dev.raw[3]}};
    if (used.pasid != kHostTables) {
        // A translation of a request with a PASID (dev.dma: how such a
        // request goes now): its guest tables, as user or supervisor.
        use.pasid = int32_t(used.pasid);
        if (dev.dma == IOGUARD_DMA_GUEST_TRANSLATED) {
            use.now_mapped = current_mapping(host_, dte, used.pasid, iova,
                                             use.current_target,
                                             use.current_perm,
                                             !used.privileged);
        } else if (dev.dma == IOGUARD_DMA_UNTRANSLATED) {
            use.now_mapped = true;      // identity
            use.current_target = iova;
            use.current_perm = IOGUARD_PERM_RW;
        }
    } else if (dev.dma == IOGUARD_DMA_TRANSLATED ||
               dev.dma == IOGUARD_DMA_GUEST_TRANSLATED) {
        use.now_mapped = current_mapping(
            host_, dte,
            dev.dma == IOGUARD_DMA_GUEST_TRANSLATED ? 0 : kHostTables, iova,
            use.current_target, use.current_perm);
    } else if (dev.dma != IOGUARD_DMA_BLOCKED) {
        use.now_mapped = true;      // identity
        use.current_target = iova;
        use.current_perm = perm_bits(dev.dma == IOGUARD_DMA_UNTRANSLATED ||
                                         dev.read_allowed,
                                     dev.dma == IOGUARD_DMA_UNTRANSLATED ||
                                         dev.write_allowed);
    }
    if (use.now_mapped && use.current_target == used.target &&
        (use.current_perm & used.access) == used.access) {
        return;     // the tables still say so: keeping it was harmless
    }
    report(use, true);
}

void DmaVerifier::report(const StaleUse &use, bool ats)
{
    {
        std::lock_guard<std::mutex> guard(lock_);
        const uint64_t now = host_.now_ns();
        if (last_.devid == use.devid && (last_.iova >> 12) == (use.iova >> 12) &&
            last_.access == use.access && last_.now_mapped == use.now_mapped &&
            now - last_ns_ < kFindingCoalesceNs) {
            return;
        }
        last_ = use;
        last_ns_ = now;
        if (ats) {
            records_.ats_use_after_invalidation(use, now);
        } else {
            records_.stale_use(use, now);
        }
    }
    const unsigned bus = use.devid >> 8, dev = (use.devid >> 3) & 0x1f,
                   fn = use.devid & 7;
    if (ats) {
        guest_error(host_,
                    "DMA verifier: requester %02x:%02x.%x %s at IOVA 0x%llx "
                    "went to 0x%llx through an ATS translation after an "
                    "INVALIDATE_IOTLB_PAGES covered it (the tables %s)",
                    bus, dev, fn, access_name(use.access),
                    (unsigned long long)use.iova,
                    (unsigned long long)use.stale_target,
                    use.now_mapped ? "map it elsewhere now"
                                   : "no longer map it");
    } else if (use.now_mapped) {
        guest_error(host_,
                    "DMA verifier: requester %02x:%02x.%x %s at IOVA 0x%llx "
                    "went to 0x%llx through a stale IOTLB entry; the page "
                    "table now maps it to 0x%llx (perm %u) and was not "
                    "invalidated", bus, dev, fn, access_name(use.access),
                    (unsigned long long)use.iova,
                    (unsigned long long)use.stale_target,
                    (unsigned long long)use.current_target, use.current_perm);
    } else {
        guest_error(host_,
                    "DMA verifier: requester %02x:%02x.%x %s at IOVA 0x%llx "
                    "after it was unmapped (use after unmap): a stale IOTLB "
                    "entry sent it to 0x%llx", bus, dev, fn,
                    access_name(use.access), (unsigned long long)use.iova,
                    (unsigned long long)use.stale_target);
    }
}

} // namespace ioguard
