// Engine micro-benchmarks: translate on the IOTLB hit path (every DMA in the
// VM), on the miss path (streaming, with the page directory cache, and
// scattered, walking all 4 levels), and the invalidations strict and lazy
// mode send.
#include <benchmark/benchmark.h>

#include "fake_guest.hh"
#include "hw/ioguard/fault-inject.h"

using namespace ioguard_test;

namespace {

constexpr uint16_t kDev = 0x0100;
constexpr uint16_t kDomain = 1;

IoguardConfig with(IoguardConfig c, unsigned prefetch_depth,
                   IoguardFaults *faults)
{
    c.prefetch_depth = prefetch_depth;
    c.faults = faults;
    return c;
}

// An enabled IOMMU with kDev translated through `mode` levels and `pages`
// 4 KiB pages mapped from IOVA 0, counting statistics or not, with the DMA
// verifier or without, and with fault rules (as in QEMU) or without.
struct Translated {
    Machine m;
    Driver d{m};
    uint64_t root = 0;

    Translated(unsigned mode, uint64_t pages, bool stats = true,
               bool verifier = false, unsigned prefetch_depth = 0,
               IoguardFaults *faults = nullptr)
        : m(with(test_config(true, true, false, stats, 64, verifier),
                 prefetch_depth, faults))
    {
        d.enable();
        root = d.alloc_table();
        d.set_dte(kDev, Driver::dte_translated(root, mode), kDomain);
        for (uint64_t i = 0; i < pages; i++) {
            d.map(root, mode, i << 12, 0x1000000 + (i << 12), true, true);
        }
    }

    IoguardTranslation translate(uint64_t iova)
    {
        IoguardTranslation t;
        ioguard_iommu_translate(m.iommu, kDev, iova, IOGUARD_PERM_READ, &t);
        return t;
    }
};

// The hit path with the per-requester statistics (stats:1, the default)
// and without them (stats:0): what query-ioguard-stats costs every DMA;
// and with the DMA verifier (verifier:1), which walks the guest's tables
// again on every hit.
void BM_TranslateIotlbHit(benchmark::State &state)
{
    Translated x(4, 256, state.range(0), state.range(1));
    uint64_t i = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(x.translate((i++ & 255) << 12));
    }
}
BENCHMARK(BM_TranslateIotlbHit)
    ->ArgNames({"stats", "verifier"})
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({1, 1});

// Two threads (vCPUs, or a vCPU and an IOThread) translating for one
// requester at once: what they pay for sharing its device table entry and
// the IOTLB.
void BM_TranslateIotlbHitTwoThreads(benchmark::State &state)
{
    static Translated *x;
    if (state.thread_index() == 0) {
        x = new Translated(4, 256);
    }
    uint64_t i = state.thread_index() * 128;
    for (auto _ : state) {
        benchmark::DoNotOptimize(x->translate((i++ & 255) << 12));
    }
    if (state.thread_index() == 0) {
        delete x;
    }
}
BENCHMARK(BM_TranslateIotlbHitTwoThreads)->Threads(2)->UseRealTime();

// What fault injection costs the hit path: the engine with an injector and
// no rules (rules:0, what every ioguard-iommu in QEMU has), and with a
// translate rule that never matches kDev (rules:1: every DMA is checked
// and remembered for action=stale).
void BM_TranslateIotlbHitFaultRules(benchmark::State &state)
{
    IoguardFaults *faults = ioguard_faults_new(0);
    if (state.range(0)) {
        char error[128];
        ioguard_faults_add(faults, "site=translate,requester=ff:1f.7,"
                           "action=fault", 0, ~0u, error, sizeof(error));
    }
    {
        Translated x(4, 256, true, false, 0, faults);
        uint64_t i = 0;
        for (auto _ : state) {
            benchmark::DoNotOptimize(x.translate((i++ & 255) << 12));
        }
    }
    ioguard_faults_free(faults);
}
BENCHMARK(BM_TranslateIotlbHitFaultRules)->ArgNames({"rules"})->Arg(0)->Arg(1);

// Streaming DMA: 1 GiB of consecutive pages, far more than the IOTLB
// holds, so every translate misses; the walk finds its level-1 table in the
// page directory cache and reads one entry.
void BM_TranslateMissSequential(benchmark::State &state)
{
    constexpr uint64_t kPages = 1 << 18;
    Translated x(4, kPages);
    uint64_t i = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(x.translate((i++ % kPages) << 12));
    }
}
BENCHMARK(BM_TranslateMissSequential);

// The same 1 GiB stream with the prefetcher on (prefetch-depth 32) and
// kDev's DMA CONSISTENT (streaming:0: what every guest gets by default) or
// STREAMING by host policy (streaming:1: translations are prefetched ahead
// of the stream, so the DMA finds them cached).
void BM_TranslateSequential(benchmark::State &state)
{
    constexpr uint64_t kPages = 1 << 18;
    Translated x(4, kPages, true, false, 32);
    if (state.range(0)) {
        const IoguardStreamingRule rule{kDev, 0, ~uint64_t{0}};
        ioguard_iommu_add_streaming_rule(x.m.iommu, &rule);
    }
    uint64_t i = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(x.translate((i++ % kPages) << 12));
    }
}
BENCHMARK(BM_TranslateSequential)->ArgNames({"streaming"})->Arg(0)->Arg(1);

// v1 and v2 tables side by side (tables:1, tables:2), for one requester
// whose 1 GiB of pages from IOVA 0 are mapped by Linux's 4-level tables of
// either kind (for v2: DTE GV and GIoV, guest-translation=on, GTEn). hit:1
// translates one page again and again (the IOTLB hit path); hit:0 streams
// through the 1 GiB, missing on every page: a v1 walk finds its level-1
// table in the page directory cache and reads one entry, a v2 walk reads
// the GCR3 entry and four levels.
void BM_TranslateTables(benchmark::State &state)
{
    constexpr uint64_t kPages = 1 << 18;
    const bool v2 = state.range(0) == 2, hit = state.range(1);
    IoguardConfig config = test_config();
    config.guest_translation = true;
    Machine m(config);
    Driver d{m};
    d.enable(v2 ? 1ULL << CONTROL_GT_EN : 0);
    const uint64_t root = d.alloc_table();
    if (v2) {
        const uint64_t gcr3 = d.alloc_table();
        m.w64(gcr3, root | GCR3_VALID);
        const Driver::GuestDte dte = Driver::guest_dte(gcr3, kDomain);
        d.set_dte(kDev, dte.q0, dte.q1, dte.q2);
    } else {
        d.set_dte(kDev, Driver::dte_translated(root, 4), kDomain);
    }
    for (uint64_t i = 0; i < kPages; i++) {
        if (v2) {
            d.map_v2(root, i << 12, 0x1000000 + (i << 12));
        } else {
            d.map(root, 4, i << 12, 0x1000000 + (i << 12), true, true);
        }
    }
    IoguardTranslation t;
    uint64_t i = 0;
    for (auto _ : state) {
        ioguard_iommu_translate(m.iommu, kDev, hit ? 0 : (i++ % kPages) << 12,
                                IOGUARD_PERM_READ, &t);
        benchmark::DoNotOptimize(t);
    }
    if (t.perm == IOGUARD_PERM_NONE) {
        state.SkipWithError("the tables do not translate");
    }
}
BENCHMARK(BM_TranslateTables)
    ->ArgNames({"tables", "hit"})
    ->Args({1, 1})->Args({2, 1})->Args({1, 0})->Args({2, 0});

// Scattered DMA: one page in each of 65536 2 MiB regions, far more than
// the IOTLB and the page directory cache hold: every translate walks all 4
// levels. (All level-2 entries share one level-1 table, to keep the fake
// RAM small; the tables are built by hand for that.)
void BM_TranslateMissScattered(benchmark::State &state)
{
    constexpr uint64_t kGiB = 128;     // 128 x 512 regions of 2 MiB
    constexpr uint64_t kPde = IOMMU_PTE_PR | IOMMU_PTE_IR | IOMMU_PTE_IW;
    Translated x(4, 0);
    const uint64_t l3 = x.d.alloc_table(), l1 = x.d.alloc_table();
    x.m.w64(x.root, l3 | kPde | 3ULL << 9);
    x.m.w64(l1, 0x1000000 | kPde);
    for (uint64_t g = 0; g < kGiB; g++) {
        const uint64_t l2 = x.d.alloc_table();
        x.m.w64(l3 + g * 8, l2 | kPde | 2ULL << 9);
        for (uint64_t i = 0; i < 512; i++) {
            x.m.w64(l2 + i * 8, l1 | kPde | 1ULL << 9);
        }
    }
    uint64_t i = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(x.translate((i++ % (kGiB * 512)) << 21));
    }
    if (x.translate(0).perm == IOGUARD_PERM_NONE) {
        state.SkipWithError("the scattered tables do not translate");
    }
}
BENCHMARK(BM_TranslateMissScattered);

// Strict mode: one INVALIDATE_IOMMU_PAGES of one page per unmap.
void BM_InvalidateOnePage(benchmark::State &state)
{
    Translated x(3, 1024);
    for (uint64_t i = 0; i < 1024; i++) {
        x.translate(i << 12);
    }
    uint64_t i = 0;
    for (auto _ : state) {
        x.d.inv_pages(kDomain, (i++ & 1023) << 12, false);
    }
}
BENCHMARK(BM_InvalidateOnePage);

// Lazy mode: the flush queue invalidates the whole domain.
void BM_InvalidateDomain(benchmark::State &state)
{
    Translated x(3, 0);
    for (auto _ : state) {
        x.d.inv_domain(kDomain);
    }
}
BENCHMARK(BM_InvalidateDomain);

void BM_TranslateIommuOff(benchmark::State &state)
{
    Machine m;
    IoguardTranslation t;
    uint64_t i = 0;
    for (auto _ : state) {
        ioguard_iommu_translate(m.iommu, kDev, (i++ & 255) << 12,
                                IOGUARD_PERM_READ, &t);
        benchmark::DoNotOptimize(t);
    }
}
BENCHMARK(BM_TranslateIommuOff);

} // namespace

BENCHMARK_MAIN();
