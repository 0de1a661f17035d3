#include "dma_verifier.hh"

#include <cstdarg>
#include <cstdio>

#include "device_table.hh"
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
    const WalkResult now = walk_v1(host_, t.dte.page_table_root(),
                                   t.dte.mode(), t.iova);
    StaleUse use{};
    use.devid = t.devid;
    use.domain = t.dte.domain_id();
    use.iova = t.iova;
    use.access = t.perm;
    use.stale_target = cached.page_base + (t.iova & cached_mask);
    use.stale_perm = perm_bits(cached.read, cached.write);
    use.now_mapped = now.status == WalkResult::Status::Ok;
    if (use.now_mapped) {
        use.current_target = now.page_base + (t.iova & (now.page_size - 1));
        use.current_perm = perm_bits(now.read && t.dte.read_allowed(),
                                     now.write && t.dte.write_allowed());
        if (use.current_target == use.stale_target &&
            (use.current_perm & t.perm) == t.perm) {
            return;     // the tables still say so
        }
    }
    report(use);
}

void DmaVerifier::report(const StaleUse &use)
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
        records_.stale_use(use, now);
    }
    const unsigned bus = use.devid >> 8, dev = (use.devid >> 3) & 0x1f,
                   fn = use.devid & 7;
    if (use.now_mapped) {
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
