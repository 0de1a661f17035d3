// Device-table and page-table walks over fuzzed guest memory, with the
// STREAMING prefetcher and the verifier as the input chooses.
//
// Invariants beyond "does not crash":
// - no translation is granted that the tables do not grant: each grant is
//   checked against reference_walk.hh, which reads the tables from RAM;
// - bounded work: one translation reads at most a DTE, one walk for the
//   DMA, one for the verifier and the prefetcher's walks, whatever the
//   tables say.
//
// The tables do not change while translations run, so no cached
// translation can be stale; each requester gets its own domain ID, so no
// two share IOTLB entries (sharing is the guest's choice, and allowed).
#include "fuzz_machine.hh"
#include "reference_walk.hh"

using namespace ioguard_fuzz;

namespace {

// RAM reads of one translation: the DTE, a walk of at most 6 levels for the
// DMA and one for the verifier, an event, and per prefetched page one walk.
uint64_t max_reads_per_translation(const IoguardConfig &c)
{
    return 1 + 6 + 6 + 1 + uint64_t{c.prefetch_depth} * 6;
}

uint64_t fuzz_iova(FuzzedDataProvider &in)
{
    switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0:     // low pages, where the fuzzer's tables usually map
        return in.ConsumeIntegralInRange<uint64_t>(0, 4095) << 12 |
               in.ConsumeIntegralInRange<uint64_t>(0, 4095);
    case 1:     // one index per level chosen, 0..7 each
        {
            uint64_t iova = 0;
            for (unsigned level = 1; level <= 6; level++) {
                iova |= in.ConsumeIntegralInRange<uint64_t>(0, 7)
                        << level_shift(level);
            }
            return iova;
        }
    default:
        return in.ConsumeIntegral<uint64_t>();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzedDataProvider in(data, size);
    const IoguardConfig config = fuzz_config(in);
    FuzzMachine m(config);

    // The guest's tables: words at 8-byte slots of RAM; the device table is
    // the first 8 KiB.
    const unsigned words = in.ConsumeIntegralInRange(0, 512);
    for (unsigned i = 0; i < words && in.remaining_bytes(); i++) {
        const uint64_t at = in.ConsumeBool()
                                ? in.ConsumeIntegralInRange<uint64_t>(0, 255) * 32
                                : in.ConsumeIntegralInRange<uint64_t>(
                                      0, kRamSize / 8 - 1) * 8;
        m.w64(at, fuzz_word(in));
    }
    for (unsigned devid = 0; devid < kDevids; devid++) {
        const uint64_t q1 = kDevTable + devid * 32 + 8;
        m.w64(q1, (m.r64(q1) & ~DTE_DOMID_MASK) | (devid + 1));
    }
    // The event log off: the engine must not write RAM while the tables
    // are being checked.
    m.mmio_write(MMIO_DEV_TABLE_OFFSET, kDevTable | kDevTableSizeField);
    m.mmio_write(MMIO_CONTROL_OFFSET, 1ULL << CONTROL_IOMMU_EN);
    m.mmio_write(IOGUARD_MMIO_CONTROL,
                 in.ConsumeBool() ? IOGUARD_CONTROL_STREAMING_EN : 0);
    if (in.ConsumeBool()) {
        const IoguardStreamingRule rule{
            in.ConsumeIntegralInRange<uint16_t>(0, kDevids - 1), 0,
            ~uint64_t{0}};
        ioguard_iommu_add_streaming_rule(m.iommu, &rule);
    }

    const uint64_t bound = max_reads_per_translation(config);
    while (in.remaining_bytes()) {
        const uint16_t devid = in.ConsumeIntegralInRange<uint16_t>(0, kDevids - 1);
        const unsigned perm = in.ConsumeIntegralInRange<unsigned>(0, 2);
        const uint64_t iova = fuzz_iova(in);
        // The interrupt range is for remap_msi, not for DMA.
        if (iova >> 20 == 0xfee) {
            continue;
        }
        const unsigned count = in.ConsumeIntegralInRange(1, 16);
        for (unsigned i = 0; i < count; i++) {      // a short sequential run
            const uint64_t at = iova + uint64_t{i} * 4096;
            const uint64_t reads = m.ram_reads;
            IoguardTranslation t;
            ioguard_iommu_translate(m.iommu, devid, at, perm, &t);
            FUZZ_CHECK(m.ram_reads - reads <= bound,
                       "%llu RAM reads for one translation",
                       (unsigned long long)(m.ram_reads - reads));
            FUZZ_CHECK(m.ram_writes == 0, "RAM written with the log off");
            check_granted(m, devid, at, perm, t);
        }
    }
    return 0;
}
