// Interrupt-remapping lookups over fuzzed device table entries and
// interrupt remapping tables (32- and 128-bit IRTEs).
//
// Invariants beyond "does not crash":
// - no interrupt is delivered that the tables do not allow: with IV=1, a
//   fixed or arbitrated interrupt gets through only unchanged (IntCtl
//   "pass") or remapped by an IRTE inside the table (index below 2^IntTabLen)
//   that has RemapEn=1 and GuestMode=0, with that IRTE's vector; other
//   delivery modes only unchanged;
// - bounded work: one lookup reads at most the DTE and one IRTE, and
//   writes at most one event.
#include "fuzz_machine.hh"

using namespace ioguard_fuzz;

namespace {

// Checks a delivered interrupt against the DTE and IRTE in RAM, decoded
// here from the spec (2.2.5, "Interrupt Remapping Tables").
void check_delivered(const FuzzMachine &m, bool wide, uint16_t devid,
                     const IoguardMsi &in, const IoguardMsi &out)
{
    const uint64_t q2 = m.r64(kDevTable + devid * 32ULL + 16);
    const bool interrupt_valid = q2 & 1;
    if (!interrupt_valid) {
        FUZZ_CHECK(out.address == in.address && out.data == in.data,
                   "IV=0 but devid %04x's interrupt was changed", devid);
        return;
    }
    const unsigned delivery = in.data >> 8 & 7;
    const unsigned int_ctl = q2 >> 60 & 3;
    const bool unchanged = out.address == in.address && out.data == in.data;
    if (delivery > 1) {                 // NMI, INIT, ExtINT, SMI...
        FUZZ_CHECK(unchanged, "devid %04x: delivery mode %u remapped", devid,
                   delivery);
        return;
    }
    if (int_ctl == 1) {                 // pass through unmapped
        FUZZ_CHECK(unchanged, "devid %04x: IntCtl=pass but remapped", devid);
        return;
    }
    FUZZ_CHECK(int_ctl == 2, "devid %04x: IntCtl=%u delivered", devid,
               int_ctl);
    const unsigned table_len = q2 >> 1 & 0xf;
    const unsigned index = in.data & 0x7ff;
    FUZZ_CHECK(index < (1u << table_len),
               "devid %04x: index %u beyond a table of 2^%u", devid, index,
               table_len);
    const uint64_t irte_at = (q2 & 0x000fffffffffffc0ULL) +
                             index * (wide ? 16ULL : 4ULL);
    FUZZ_CHECK(irte_at + (wide ? 16 : 4) <= kRamSize,
               "devid %04x: IRTE at 0x%llx is not RAM", devid,
               (unsigned long long)irte_at);
    uint64_t lo = 0, hi = 0;
    memcpy(&lo, m.ram + irte_at, wide ? 8 : 4);
    if (wide) {
        memcpy(&hi, m.ram + irte_at + 8, 8);
    }
    // GuestMode (bit 7) exists only in the 128-bit format.
    const bool remap_enabled = lo & 1, guest_mode = wide && (lo >> 7 & 1);
    const unsigned vector = wide ? hi & 0xff : lo >> 16 & 0xff;
    FUZZ_CHECK(remap_enabled && !guest_mode,
               "devid %04x: IRTE %u (RemapEn=%d GuestMode=%d) delivered",
               devid, index, remap_enabled, guest_mode);
    FUZZ_CHECK((out.data & 0xff) == vector,
               "devid %04x: vector %u, IRTE says %u", devid, out.data & 0xff,
               vector);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzedDataProvider in(data, size);
    IoguardConfig config = fuzz_config(in);
    config.intremap = true;
    FuzzMachine m(config);
    const bool wide = config.ga && in.ConsumeBool();
    m.enable(wide ? 1ULL << CONTROL_GA_EN : 0);

    // DTEs with interrupt fields, and IRTEs.
    const unsigned writes = in.ConsumeIntegralInRange(0, 256);
    for (unsigned i = 0; i < writes && in.remaining_bytes(); i++) {
        switch (in.ConsumeIntegralInRange(0, 2)) {
        case 0:     // DTE quadword 2: IV, IntTabLen, root, IntCtl, passes
            m.w64(in.ConsumeIntegralInRange<uint64_t>(0, kDevids - 1) * 32 + 16,
                  (in.ConsumeBool() ? 1 : 0) |
                      in.ConsumeIntegralInRange<uint64_t>(0, 15) << 1 |
                      (fuzz_page(in) |
                       in.ConsumeIntegralInRange<uint64_t>(0, 63) << 6) |
                      in.ConsumeIntegralInRange<uint64_t>(0, 3) << 60 |
                      (in.ConsumeIntegral<uint64_t>() &
                       0x0f00000000000000ULL));
            break;
        case 1:     // an IRTE, of either size
            m.w64(in.ConsumeIntegralInRange<uint64_t>(0x4000 / 8,
                                                      kRamSize / 8 - 1) * 8,
                  in.ConsumeIntegral<uint64_t>() | (in.ConsumeBool() ? 1 : 0));
            break;
        default:
            m.w64(in.ConsumeIntegralInRange<uint64_t>(0, kRamSize / 8 - 1) * 8,
                  fuzz_word(in));
            break;
        }
    }

    while (in.remaining_bytes()) {
        const uint16_t devid = in.ConsumeIntegralInRange<uint16_t>(0, kDevids - 1);
        const IoguardMsi msi{
            0xfee00000 | in.ConsumeIntegralInRange<uint64_t>(0, 0xfffff),
            in.ConsumeIntegral<uint32_t>()};
        IoguardMsi out;
        const uint64_t reads = m.ram_reads, events = m.ram_writes;
        const bool delivered =
            ioguard_iommu_remap_msi(m.iommu, devid, &msi, &out);
        FUZZ_CHECK(m.ram_reads - reads <= 2, "%llu RAM reads for one MSI",
                   (unsigned long long)(m.ram_reads - reads));
        FUZZ_CHECK(m.ram_writes - events <= 1, "%llu events for one MSI",
                   (unsigned long long)(m.ram_writes - events));
        if (delivered) {
            check_delivered(m, wide, devid, msi, out);
        }
    }
    return 0;
}
