// Engine micro-benchmark of translate: the IOTLB hit path (every DMA in the
// VM) and the 4-level miss path (a page walk), against a faked guest.
#include <benchmark/benchmark.h>

#include "fake_guest.hh"

using namespace ioguard_test;

namespace {

constexpr uint16_t kDev = 0x0100;

void BM_TranslateIotlbHit(benchmark::State &state)
{
    Machine m;
    Driver d{m};
    d.enable();
    const uint64_t root = d.alloc_table();
    d.set_dte(kDev, Driver::dte_translated(root, 4), 1);
    for (uint64_t i = 0; i < 256; i++) {
        d.map(root, 4, i << 12, 0x2000000 + (i << 12), true, true);
    }
    IoguardTranslation t;
    uint64_t i = 0;
    for (auto _ : state) {
        ioguard_iommu_translate(m.iommu, kDev, (i++ & 255) << 12,
                                IOGUARD_PERM_READ, &t);
        benchmark::DoNotOptimize(t);
    }
}
BENCHMARK(BM_TranslateIotlbHit);

void BM_TranslateMiss4Level(benchmark::State &state)
{
    Machine m;
    Driver d{m};
    d.enable();
    const uint64_t root = d.alloc_table();
    d.set_dte(kDev, Driver::dte_translated(root, 4), 1);
    d.map(root, 4, 0x1000, 0x2000000, true, true);
    IoguardTranslation t;
    for (auto _ : state) {
        // Drop the cached entry each time, so every translate walks.
        state.PauseTiming();
        d.inv_pages(1, 0x1000, false);
        state.ResumeTiming();
        ioguard_iommu_translate(m.iommu, kDev, 0x1000, IOGUARD_PERM_READ, &t);
        benchmark::DoNotOptimize(t);
    }
}
BENCHMARK(BM_TranslateMiss4Level);

// Strict mode: one INVALIDATE_IOMMU_PAGES of one page per unmap.
void BM_InvalidateOnePage(benchmark::State &state)
{
    Machine m;
    Driver d{m};
    d.enable();
    const uint64_t root = d.alloc_table();
    d.set_dte(kDev, Driver::dte_translated(root, 3), 1);
    for (uint64_t i = 0; i < 1024; i++) {
        d.map(root, 3, i << 12, 0x1000000 + (i << 12), true, true);
        IoguardTranslation t;
        ioguard_iommu_translate(m.iommu, kDev, i << 12, IOGUARD_PERM_READ, &t);
    }
    uint64_t i = 0;
    for (auto _ : state) {
        d.inv_pages(1, (i++ & 1023) << 12, false);
    }
}
BENCHMARK(BM_InvalidateOnePage);

// Lazy mode: the flush queue invalidates the whole domain.
void BM_InvalidateDomain(benchmark::State &state)
{
    Machine m;
    Driver d{m};
    d.enable();
    for (auto _ : state) {
        d.inv_domain(1);
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
