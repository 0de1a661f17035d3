// STREAMING prefetch and invalidation exactness. The harness plays a
// driver: it maps and unmaps 4 KiB pages of two requesters (each with its
// own domain and tables), marks them STREAMING or not, turns the guest
// opt-in and host rules on and off, sends INVALIDATE_IOMMU_PAGES,
// INVALIDATE_IOMMU_ALL and PREFETCH_IOMMU_PAGES, and makes sequential and
// scattered DMA, all as the input says. It keeps its own record of what
// each page was mapped to since the last invalidation that covered it.
//
// Invariants beyond "does not crash":
// - invalidation exactness: a DMA sees the page's current mapping, or one
//   it had since the last invalidation covering it, never an older one,
//   and never a mapping of a page that was invalidated and is unmapped;
//   prefetched entries are held to this like any others;
// - a not-present result is never cached: a page mapped without an
//   invalidation (as Linux does) translates at once;
// - bounded work: one DMA makes at most 1 + prefetch-depth walks.
#include <array>
#include <optional>
#include <vector>

#include "fuzz_machine.hh"

using namespace ioguard_fuzz;

namespace {

constexpr unsigned kRequesters = 2;
constexpr unsigned kPages = 512;            // IOVA 0..2 MiB: one L1 table
constexpr uint16_t kDevid[kRequesters] = {0x28, 0x30};
constexpr uint16_t kDomain[kRequesters] = {7, 9};

struct Mapping {
    uint64_t pa;
    bool read, write;
    bool operator==(const Mapping &) const = default;
};

struct Page {
    std::optional<Mapping> now;
    // What the page was mapped to since the last invalidation covering
    // it: an IOTLB may still hold those. (Not-present is never cached, so
    // an unmapped state is not remembered.)
    std::vector<Mapping> stale;
};

struct Driver {
    FuzzMachine &m;
    std::array<std::array<Page, kPages>, kRequesters> pages;

    static uint64_t root(unsigned r) { return 0x4000 + r * 0x3000; }
    static uint64_t l1(unsigned r) { return root(r) + 0x2000; }

    explicit Driver(FuzzMachine &machine) : m(machine)
    {
        for (unsigned r = 0; r < kRequesters; r++) {
            const uint64_t l2 = root(r) + 0x1000;
            const uint64_t pde = IOMMU_PTE_PR | IOMMU_PTE_IR | IOMMU_PTE_IW;
            m.w64(root(r), l2 | pde | 2ULL << IOMMU_PTE_NEXT_LEVEL_SHIFT);
            m.w64(l2, l1(r) | pde | 1ULL << IOMMU_PTE_NEXT_LEVEL_SHIFT);
            const uint64_t dte = kDevTable + kDevid[r] * 32ULL;
            m.w64(dte, root(r) | DTE_FLAG_V | DTE_FLAG_TV |
                           3ULL << DTE_MODE_SHIFT | DTE_FLAG_IR | DTE_FLAG_IW);
            m.w64(dte + 8, kDomain[r]);
        }
        m.enable();
    }

    void set(unsigned r, unsigned page, std::optional<Mapping> to,
             bool streaming)
    {
        Page &p = pages[r][page];
        if (p.now) {
            p.stale.push_back(*p.now);
        }
        p.now = to;
        uint64_t pte = 0;
        if (to) {
            pte = to->pa | IOMMU_PTE_PR | (to->read ? IOMMU_PTE_IR : 0) |
                  (to->write ? IOMMU_PTE_IW : 0) |
                  (streaming ? IOGUARD_PTE_STREAMING : 0);
        }
        m.w64(l1(r) + page * 8, pte);
    }
    void invalidated(unsigned r, uint64_t first, uint64_t last)
    {
        for (uint64_t page = first >> 12; page < kPages && page <= last >> 12;
             page++) {
            pages[r][page].stale.clear();
        }
    }

    // INVALIDATE_IOMMU_PAGES of 2^order pages around page (S=1), or of one.
    void invalidate_pages(unsigned r, unsigned page, unsigned order)
    {
        uint64_t address = uint64_t{page} << 12, first = address,
                 last = address + 0xfff;
        uint32_t s = 0;
        if (order) {
            const uint64_t size = uint64_t{1} << (12 + order);
            first = address & ~(size - 1);
            last = first + size - 1;
            address = first | ((size >> 1) - 1 & ~uint64_t{0xfff});
            s = CMD_INV_IOMMU_PAGES_SIZE_MASK;
        }
        const uint32_t cmd[4] = {0, uint32_t{CMD_INV_IOMMU_PAGES} << 28 |
                                        kDomain[r],
                                 uint32_t(address) | s,
                                 uint32_t(address >> 32)};
        m.run_command(cmd);
        invalidated(r, first, last);
    }
    void invalidate_all()
    {
        const uint32_t cmd[4] = {0, uint32_t{CMD_INV_ALL} << 28, 0, 0};
        m.run_command(cmd);
        for (unsigned r = 0; r < kRequesters; r++) {
            invalidated(r, 0, ~uint64_t{0});
        }
    }
    void prefetch(unsigned r, unsigned page, unsigned count, bool inval)
    {
        const uint32_t cmd[4] = {
            kDevid[r] | count << CMD_PREFETCH_PFCOUNT_SHIFT,
            uint32_t{CMD_PREFETCH_IOMMU_PAGES} << 28,
            page << 12 | (inval ? CMD_PREFETCH_INVAL_MASK : 0), 0};
        m.run_command(cmd);
        if (inval && count) {
            invalidated(r, uint64_t{page} << 12,
                        (uint64_t{page} + count) * 4096 - 1);
        }
    }

    // One DMA: the engine's answer must be what the page is mapped to now
    // or was since its last invalidation.
    void dma(unsigned r, unsigned page, unsigned perm)
    {
        const uint64_t iova = uint64_t{page} << 12 | 0x80;
        IoguardTranslation t;
        ioguard_iommu_translate(m.iommu, kDevid[r], iova, perm, &t);
        const Page &p = pages[r][page];
        auto matches = [&](const std::optional<Mapping> &s) {
            if (t.perm == IOGUARD_PERM_NONE) {
                return !s || (perm == IOGUARD_PERM_READ && !s->read) ||
                       (perm == IOGUARD_PERM_WRITE && !s->write);
            }
            return s && t.translated_addr == s->pa && t.addr_mask == 0xfff &&
                   t.perm == ((s->read ? IOGUARD_PERM_READ : 0u) |
                              (s->write ? IOGUARD_PERM_WRITE : 0u));
        };
        bool ok = matches(p.now);
        for (const Mapping &s : p.stale) {
            ok = ok || matches(s);
        }
        FUZZ_CHECK(ok, "requester %04x page %u: perm %u pa 0x%llx is not its "
                   "mapping (%s) nor a stale one (%zu)", kDevid[r], page,
                   t.perm, (unsigned long long)t.translated_addr,
                   p.now ? "mapped" : "unmapped", p.stale.size());
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzedDataProvider in(data, size);
    IoguardConfig config = fuzz_config(in);
    if (!config.prefetch_depth) {
        config.prefetch_depth = 8;
    }
    FuzzMachine m(config);
    Driver d(m);
    const uint64_t max_walks = 1 + config.prefetch_depth;

    while (in.remaining_bytes()) {
        const unsigned r = in.ConsumeIntegralInRange<unsigned>(0, 1);
        const unsigned page = in.ConsumeIntegralInRange<unsigned>(0, kPages - 1);
        switch (in.ConsumeIntegralInRange(0, 8)) {
        case 0:
        case 1:     // map a run of pages, STREAMING or not
            {
                const unsigned count = in.ConsumeIntegralInRange(1, 64);
                const uint64_t pa = in.ConsumeIntegralInRange<uint64_t>(0, 1 << 20)
                                    << 12;
                const bool read = in.ConsumeBool(), write = in.ConsumeBool();
                const bool streaming = in.ConsumeBool();
                for (unsigned i = 0; i < count && page + i < kPages; i++) {
                    d.set(r, page + i, Mapping{pa + i * 4096ULL, read, write},
                          streaming);
                }
            }
            break;
        case 2:     // unmap a run
            {
                const unsigned count = in.ConsumeIntegralInRange(1, 64);
                for (unsigned i = 0; i < count && page + i < kPages; i++) {
                    d.set(r, page + i, std::nullopt, false);
                }
            }
            break;
        case 3:
            d.invalidate_pages(r, page, in.ConsumeIntegralInRange(0, 10));
            break;
        case 4:
            if (in.ConsumeIntegralInRange(0, 7) == 0) {
                d.invalidate_all();
            } else {
                d.prefetch(r, page, in.ConsumeIntegralInRange(0, 255),
                           in.ConsumeBool());
            }
            break;
        case 5:     // the guest's opt-in, or a host rule
            if (in.ConsumeBool()) {
                m.mmio_write(IOGUARD_MMIO_CONTROL,
                             in.ConsumeBool() ? IOGUARD_CONTROL_STREAMING_EN
                                              : 0);
            } else {
                const IoguardStreamingRule rule{
                    kDevid[r], uint64_t{page} << 12,
                    (uint64_t{page} + in.ConsumeIntegralInRange(1, 128)) *
                            4096 - 1};
                if (in.ConsumeBool()) {
                    ioguard_iommu_add_streaming_rule(m.iommu, &rule);
                } else {
                    ioguard_iommu_remove_streaming_rule(m.iommu, &rule);
                }
            }
            break;
        default:    // DMA: a sequential run up or down, or one page
            {
                const unsigned count = in.ConsumeIntegralInRange(1, 48);
                const int step = in.ConsumeBool() ? 1 : -1;
                const unsigned perm = in.ConsumeIntegralInRange<unsigned>(1, 2);
                for (unsigned i = 0; i < count; i++) {
                    const int at = int(page) + step * int(i);
                    if (at < 0 || at >= int(kPages)) {
                        break;
                    }
                    IoguardRequesterStats before, after;
                    ioguard_iommu_get_requester_stats(m.iommu, kDevid[r],
                                                      &before);
                    d.dma(r, unsigned(at), perm);
                    ioguard_iommu_get_requester_stats(m.iommu, kDevid[r],
                                                      &after);
                    if (config.stats) {
                        const uint64_t walks =
                            (after.iotlb_misses - before.iotlb_misses) +
                            (after.prefetch.walks - before.prefetch.walks);
                        FUZZ_CHECK(walks <= max_walks,
                                   "%llu walks for one DMA",
                                   (unsigned long long)walks);
                    }
                }
            }
            break;
        }
    }
    return 0;
}
