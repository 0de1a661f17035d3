// Guest translation (guest-translation=on, DTE GV and GIoV) over fuzzed
// guest memory: GCR3 tables and v2 page tables whose words the input
// shapes, host tables under them now and then, the verifier as the input
// chooses.
//
// Invariants beyond "does not crash":
// - no translation is granted that the tables do not grant: each grant is
//   checked against reference_guest_walk.hh (or reference_walk.hh for a
//   DTE that does not use guest tables), which reads the tables from RAM;
// - the engine writes nothing but Accessed and Dirty bits, only ever
//   setting them, and Dirty only for a write it granted;
// - bounded work: one translation reads at most a DTE and, for the DMA and
//   for the verifier, three GCR3 entries and five v2 entries, each through
//   a host walk of at most six, and a host walk of the page;
// - a mapping walk (query-ioguard-mappings, MAP notifiers) gives only
//   ranges the reference translates exactly so, within its budgets.
#include <vector>

#include "fuzz_machine.hh"
#include "reference_guest_walk.hh"

using namespace ioguard_fuzz;

namespace {

constexpr uint64_t kGuestWalkReads = (3 + 5) * (6 + 1) + 6;
constexpr uint64_t kMaxReadsPerTranslation = 1 + 2 * kGuestWalkReads + 1;

// A word shaped like a GCR3 entry or a v2 entry (any of P, R/W, U/S, A, D,
// PS), or anything fuzz_word makes.
uint64_t guest_word(FuzzedDataProvider &in)
{
    switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0:
        return fuzz_page(in) | GCR3_VALID;
    case 1:
    case 2:
        return fuzz_page(in) | IOMMU_PAGE_PRESENT |
               (in.ConsumeIntegral<uint8_t>() &
                (IOMMU_PAGE_RW | IOMMU_PAGE_USER | IOMMU_PAGE_ACCESS |
                 IOMMU_PAGE_DIRTY | IOMMU_PAGE_PSE));
    default:
        return fuzz_word(in);
    }
}

// A DTE that uses guest tables: GV, GIoV, GLX, the GCR3 table, the paging
// mode; now and then host tables (Mode) as well.
void write_guest_dte(FuzzMachine &m, FuzzedDataProvider &in, uint16_t devid)
{
    const uint64_t gcr3 = fuzz_page(in);
    const unsigned mode = in.ConsumeIntegralInRange(0, 3) == 0
                              ? in.ConsumeIntegralInRange(1, 6)
                              : 0;
    const uint64_t q0 = DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_GV |
                        (in.ConsumeIntegralInRange(0, 7) ? DTE_FLAG_GIOV : 0) |
                        (in.ConsumeBool() ? DTE_FLAG_IR : 0) |
                        (in.ConsumeIntegralInRange(0, 3) ? DTE_FLAG_IW : 0) |
                        in.ConsumeIntegralInRange<uint64_t>(0, 3)
                            << DTE_GLX_SHIFT |
                        ((gcr3 >> 12) & 7) << DTE_GCR3_SHIFT_A |
                        uint64_t(mode) << DTE_MODE_SHIFT |
                        (mode ? fuzz_page(in) : 0);
    const uint64_t q1 = (devid + 1) | ((gcr3 >> 15) & 0xffff)
                                          << DTE_GCR3_SHIFT_B |
                        ((gcr3 >> 31) & 0x1fffff) << DTE_GCR3_SHIFT_C;
    const uint64_t q2 = in.ConsumeIntegralInRange(0, 7) == 0
                            ? in.ConsumeIntegralInRange<uint64_t>(0, 3)
                                  << DTE_GPT_LEVEL_SHIFT
                            : 0;
    const uint64_t at = kDevTable + devid * 32ULL;
    m.w64(at, q0);
    m.w64(at + 8, q1);
    m.w64(at + 16, q2);
    m.w64(at + 24, 0);
}

uint64_t guest_address(FuzzedDataProvider &in)
{
    switch (in.ConsumeIntegralInRange(0, 4)) {
    case 0:     // low pages
        return in.ConsumeIntegralInRange<uint64_t>(0, 4095) << 12 |
               in.ConsumeIntegralInRange<uint64_t>(0, 4095);
    case 1: {   // small indices at every level
        uint64_t gva = 0;
        for (unsigned level = 1; level <= 5; level++) {
            gva |= in.ConsumeIntegralInRange<uint64_t>(0, 3)
                   << (12 + 9 * (level - 1));
        }
        return gva;
    }
    case 2:     // a process's high half: sign-extended, small indices
        return ~uint64_t{0} << 47 |
               in.ConsumeIntegralInRange<uint64_t>(0, 3) << 39 |
               in.ConsumeIntegralInRange<uint64_t>(0, 4095) << 12;
    default:
        return in.ConsumeIntegral<uint64_t>();
    }
}

bool uses_guest_tables(const FuzzMachine &m, uint16_t devid, bool gt_on)
{
    const GuestDteFields dte = guest_dte_of(m, devid);
    return gt_on && (dte.q0 & DTE_FLAG_V) && (dte.q0 & DTE_FLAG_TV) &&
           dte.guest_valid() && dte.guest_io_valid();
}

// The engine granted t to a request without a PASID: the guest tables (or
// the host tables, for a DTE that does not use guest tables) must grant at
// least as much, at the same address.
void check_granted_guest(const FuzzMachine &m, uint16_t devid, uint64_t gva,
                         unsigned requested, const IoguardTranslation &t,
                         bool gt_on)
{
    if (!uses_guest_tables(m, devid, gt_on)) {
        // The guest fields, illegal ones included, are then not looked at
        // by the reference; the engine refuses illegal ones, which the
        // reference may grant: refusing is always allowed.
        check_granted(m, devid, gva, requested, t);
        return;
    }
    if (t.perm == IOGUARD_PERM_NONE) {
        return;
    }
    FUZZ_CHECK((requested & ~t.perm) == 0, "devid %04x gva %llx: asked %u, "
               "granted %u", devid, (unsigned long long)gva, requested,
               t.perm);
    const uint64_t address = t.translated_addr | (gva & t.addr_mask);
    const auto g = reference_guest_translate(m, devid, gva);
    FUZZ_CHECK(g && g->address == address &&
                   (!(t.perm & IOGUARD_PERM_READ) || g->read) &&
                   (!(t.perm & IOGUARD_PERM_WRITE) || g->write),
               "devid %04x gva %llx: engine grants %u at 0x%llx, the guest "
               "tables do not", devid, (unsigned long long)gva, t.perm,
               (unsigned long long)address);
}

// The engine granted t to a request with a PASID prefix: only a DTE with
// guest tables (GV; GIoV does not matter) may take it, and the PASID's
// tables must grant at least as much, at the same address.
void check_granted_pasid(const FuzzMachine &m, uint16_t devid, uint32_t pasid,
                         bool privileged, uint64_t gva, unsigned requested,
                         const IoguardTranslation &t, bool gt_on)
{
    if (t.perm == IOGUARD_PERM_NONE) {
        return;
    }
    const GuestDteFields dte = guest_dte_of(m, devid);
    FUZZ_CHECK(gt_on && dte.guest_valid(),
               "devid %04x PASID %x: granted %u without guest tables", devid,
               pasid, t.perm);
    const uint64_t address = t.translated_addr | (gva & t.addr_mask);
    const auto g = reference_guest_translate(m, devid, gva, pasid, !privileged);
    FUZZ_CHECK(g && g->address == address &&
                   (!(t.perm & IOGUARD_PERM_READ) || g->read) &&
                   (!(t.perm & IOGUARD_PERM_WRITE) || g->write) &&
                   (requested == IOGUARD_PERM_NONE ||
                    (t.perm & requested) == requested),
               "devid %04x PASID %x%s gva %llx: engine grants %u at 0x%llx, "
               "the guest tables do not", devid, pasid,
               privileged ? " (supervisor)" : "", (unsigned long long)gva,
               t.perm, (unsigned long long)address);
}

// What the monitor and MAP notifier users are told (a mapping walk of a
// requester's guest tables): each range's first, middle and last byte
// exactly as the reference translates them, and bounded work. A walk sets
// no Accessed bit.
void check_mapping_walk(FuzzMachine &m, FuzzedDataProvider &in,
                        uint16_t devid, bool gt_on)
{
    const bool with_pasid = in.ConsumeBool();
    const int32_t pasid =
        with_pasid ? int32_t(in.ConsumeIntegralInRange<uint32_t>(0, 3)) : -1;
    const bool privileged = with_pasid && in.ConsumeBool();
    const uint64_t start = in.ConsumeBool() ? 0 : guest_address(in);
    const uint64_t max_ranges = in.ConsumeIntegralInRange<uint64_t>(1, 64);
    const uint64_t max_tables = in.ConsumeIntegralInRange<uint64_t>(1, 64);
    std::vector<IoguardMapping> ranges;
    IoguardMappingWalk walk;
    const uint64_t reads = m.ram_reads, writes = m.ram_writes;
    ioguard_iommu_walk_mappings(
        m.iommu, devid, pasid, privileged, start, max_ranges, max_tables,
        [](const IoguardMapping *r, void *o) {
            static_cast<std::vector<IoguardMapping> *>(o)->push_back(*r);
        },
        &ranges, &walk);
    FUZZ_CHECK(m.ram_writes == writes, "a mapping walk wrote guest memory");
    // A DTE, 3 GCR3 entries and each table through a host walk of 6.
    FUZZ_CHECK(m.ram_reads - reads <= 1 + 3 * 7 + 7 * max_tables,
               "%llu RAM reads for a walk of at most %llu tables",
               (unsigned long long)(m.ram_reads - reads),
               (unsigned long long)max_tables);
    FUZZ_CHECK(ranges.size() <= max_ranges, "%zu ranges, asked for %llu",
               ranges.size(), (unsigned long long)max_ranges);
    const bool guest_tables =
        walk.dma == IOGUARD_DMA_GUEST_TRANSLATED &&
        (with_pasid || uses_guest_tables(m, devid, gt_on));
    if (!guest_tables) {
        return;
    }
    for (const IoguardMapping &r : ranges) {
        FUZZ_CHECK(r.iova >= start && r.last >= r.iova, "range %llx-%llx "
                   "from %llx", (unsigned long long)r.iova,
                   (unsigned long long)r.last, (unsigned long long)start);
        for (uint64_t at : {r.iova, r.iova + (r.last - r.iova) / 2, r.last}) {
            const auto g = reference_guest_translate(
                m, devid, at, with_pasid ? uint32_t(pasid) : 0, !privileged);
            const unsigned perm = g ? (g->read ? IOGUARD_PERM_READ : 0) |
                                          (g->write ? IOGUARD_PERM_WRITE : 0)
                                    : 0;
            FUZZ_CHECK(g && g->address == r.target + (at - r.iova) &&
                           perm == r.perm,
                       "devid %04x PASID %d gva %llx: the walk says %u at "
                       "0x%llx, the reference %u at 0x%llx", devid, pasid,
                       (unsigned long long)at, r.perm,
                       (unsigned long long)(r.target + (at - r.iova)), perm,
                       g ? (unsigned long long)g->address : 0ULL);
        }
    }
}

// Every word the translation changed: only A and D set, never cleared,
// D only for a granted write.
void check_writes(const std::vector<uint8_t> &before, const FuzzMachine &m,
                  bool granted_write)
{
    for (uint64_t at = 0; at < kRamSize; at += 8) {
        uint64_t old_word, new_word;
        memcpy(&old_word, before.data() + at, 8);
        memcpy(&new_word, m.ram + at, 8);
        if (old_word == new_word) {
            continue;
        }
        const uint64_t changed = old_word ^ new_word;
        FUZZ_CHECK((changed & ~(IOMMU_PAGE_ACCESS | IOMMU_PAGE_DIRTY)) == 0 &&
                       (new_word & changed) == changed,
                   "word at 0x%llx went from %016llx to %016llx",
                   (unsigned long long)at, (unsigned long long)old_word,
                   (unsigned long long)new_word);
        FUZZ_CHECK(!(changed & IOMMU_PAGE_DIRTY) || granted_write,
                   "Dirty set at 0x%llx without a granted write",
                   (unsigned long long)at);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzedDataProvider in(data, size);
    IoguardConfig config = fuzz_config(in);
    config.guest_translation = in.ConsumeIntegralInRange(0, 7) != 0;
    config.prefetch_depth = 0;      // (fuzz_streaming has the prefetcher)
    FuzzMachine m(config);

    const unsigned devids = in.ConsumeIntegralInRange(1, 4);
    for (unsigned devid = 0; devid < devids; devid++) {
        write_guest_dte(m, in, devid);
    }
    const unsigned words = in.ConsumeIntegralInRange(0, 512);
    for (unsigned i = 0; i < words && in.remaining_bytes(); i++) {
        // Tables sit in the first pages, where the DTEs' pointers often go.
        const uint64_t at = in.ConsumeIntegralInRange<uint64_t>(
                                kDevids * 32 / 8, kRamSize / 8 - 1) * 8;
        m.w64(at, guest_word(in));
    }
    const bool gt_on = config.guest_translation && in.ConsumeIntegralInRange(0, 7);
    // The event log off: the only RAM writes are the Accessed and Dirty bits.
    m.mmio_write(MMIO_DEV_TABLE_OFFSET, kDevTable | kDevTableSizeField);
    m.mmio_write(MMIO_CONTROL_OFFSET,
                 1ULL << CONTROL_IOMMU_EN | (gt_on ? 1ULL << CONTROL_GT_EN : 0));

    std::vector<uint8_t> before(kRamSize);
    while (in.remaining_bytes()) {
        const uint16_t devid = in.ConsumeIntegralInRange<uint16_t>(0, devids - 1);
        const unsigned perm = in.ConsumeIntegralInRange<unsigned>(0, 2);
        if (in.ConsumeIntegralInRange(0, 7) == 0) {
            check_mapping_walk(m, in, devid, gt_on);
            continue;
        }
        const uint64_t gva = guest_address(in);
        if (gva >> 20 == 0xfee) {
            continue;       // the interrupt range is for remap_msi
        }
        memcpy(before.data(), m.ram, kRamSize);
        const uint64_t reads = m.ram_reads, writes = m.ram_writes;
        // Half the requests with a PASID prefix: small PASIDs (the GCR3
        // table's first entries), any 16 bits, or beyond.
        const bool with_pasid = in.ConsumeBool();
        uint32_t pasid = 0;
        bool privileged = false;
        if (with_pasid) {
            pasid = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, 3)
                                     : in.ConsumeIntegral<uint32_t>() >>
                                           in.ConsumeIntegralInRange(0, 31);
            privileged = in.ConsumeBool();
        }
        IoguardTranslation t;
        if (with_pasid) {
            ioguard_iommu_translate_pasid(m.iommu, devid, pasid, privileged,
                                          gva, perm, &t);
        } else {
            ioguard_iommu_translate(m.iommu, devid, gva, perm, &t);
        }
        FUZZ_CHECK(m.ram_reads - reads <= kMaxReadsPerTranslation,
                   "%llu RAM reads for one translation",
                   (unsigned long long)(m.ram_reads - reads));
        if (m.ram_writes != writes) {
            check_writes(before, m, perm == IOGUARD_PERM_WRITE &&
                                        (t.perm & IOGUARD_PERM_WRITE));
        }
        if (with_pasid) {
            check_granted_pasid(m, devid, pasid, privileged, gva, perm, t,
                                gt_on);
        } else {
            check_granted_guest(m, devid, gva, perm, t, gt_on);
        }
    }
    return 0;
}
