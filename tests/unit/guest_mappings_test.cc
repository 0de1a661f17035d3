// What the monitor (query-ioguard-mappings) and MAP notifier users (vfio)
// are told of guest (v2) tables: PASID 0's for requests without a PASID
// (DTE.GIoV), a PASID's as user or supervisor requests see them, host
// tables under them, malformed entries, and the walk's budget.
#include <gtest/gtest.h>

#include "guest_test.hh"
#include "mapping_walk.hh"

using namespace ioguard_test;

namespace {

constexpr uint64_t kSupervisorLeaf = kLeafFlags & ~IOMMU_PAGE_USER;

using GuestMappingsTest = GuestPasidTest;

void expect_range(const IoguardMapping &r, uint64_t iova, uint64_t last,
                  uint64_t target, unsigned perm)
{
    EXPECT_EQ(r.iova, iova);
    EXPECT_EQ(r.last, last);
    EXPECT_EQ(r.target, target);
    EXPECT_EQ(r.perm, perm);
}

TEST_F(GuestMappingsTest, RequestsWithoutAPasidSeePasidZerosUserPages)
{
    // Two pages contiguous in both spaces, a read-only one (R/W clear in
    // its table), a 2 MiB page, and a supervisor page that requests
    // without a PASID (user requests) cannot use.
    map(cr3, 0x10000, 0x700000);
    const uint64_t leaf = map(cr3, 0x11000, 0x701000);
    map(cr3, 0x12000, 0x702000, IOMMU_PAGE_PRESENT | IOMMU_PAGE_USER);
    map(cr3, 0x13000, 0x703000, kSupervisorLeaf);
    map(cr3, 0x400000, 0xa00000, kLeafFlags, 2);
    const uint64_t accessed = m.r64(leaf);

    const Walk w = mappings(m, kDev);
    EXPECT_EQ(w.result.dma, unsigned(IOGUARD_DMA_GUEST_TRANSLATED));
    EXPECT_FALSE(w.result.truncated);
    EXPECT_EQ(w.result.malformed, 0u);
    ASSERT_EQ(w.ranges.size(), 3u);
    expect_range(w.ranges[0], 0x10000, 0x11fff, 0x700000, IOGUARD_PERM_RW);
    expect_range(w.ranges[1], 0x12000, 0x12fff, 0x702000, IOGUARD_PERM_READ);
    expect_range(w.ranges[2], 0x400000, 0x5fffff, 0xa00000, IOGUARD_PERM_RW);
    EXPECT_EQ(m.r64(leaf), accessed) << "a look sets no Accessed bit";

    // From the middle of a page: clipped, its target with it.
    const Walk from = mappings(m, kDev, 0x11800);
    ASSERT_EQ(from.ranges.size(), 3u);
    expect_range(from.ranges[0], 0x11800, 0x11fff, 0x701800,
                 IOGUARD_PERM_RW);
}

TEST_F(GuestMappingsTest, ByPageEntryAsVfioIsTold)
{
    map(cr3, 0x10000, 0x700000);
    map(cr3, 0x11000, 0x701000);
    map(cr3, 0x400000, 0xa00000, kLeafFlags, 2);
    Walk w = page_entries(m, kDev);
    ASSERT_EQ(w.ranges.size(), 3u);
    expect_range(w.ranges[0], 0x10000, 0x10fff, 0x700000, IOGUARD_PERM_RW);
    expect_range(w.ranges[1], 0x11000, 0x11fff, 0x701000, IOGUARD_PERM_RW);
    expect_range(w.ranges[2], 0x400000, 0x5fffff, 0xa00000, IOGUARD_PERM_RW);
    // A 2 MiB page asked for from its middle comes whole.
    w = page_entries(m, kDev, 0x480000, 0x480000);
    ASSERT_EQ(w.ranges.size(), 1u);
    EXPECT_EQ(w.ranges[0].iova, 0x400000u);
    // Each entry is what a lookup of one of its pages says.
    IoguardMapping page;
    ASSERT_TRUE(ioguard_iommu_lookup_page(m.iommu, kDev, 0x4abcde, &page));
    expect_range(page, 0x400000, 0x5fffff, 0xa00000, IOGUARD_PERM_RW);
}

TEST_F(GuestMappingsTest, APasidsPagesAsUserAndSupervisorRequestsSeeThem)
{
    map(cr3_of_pasid, 0x42000, 0x555000);
    map(cr3_of_pasid, 0x43000, 0x556000, kSupervisorLeaf);
    // A process's upper half: sign-extended, after the lower one.
    map(cr3_of_pasid, 0xffff800000042000ULL, 0x557000);
    map(cr3, 0x9000, 0x666000);     // PASID 0's: not PASID 5's

    Walk w = mappings(m, kDev, 0, 1000, 1000, kPasid, false);
    EXPECT_EQ(w.result.dma, unsigned(IOGUARD_DMA_GUEST_TRANSLATED));
    ASSERT_EQ(w.ranges.size(), 2u);
    expect_range(w.ranges[0], 0x42000, 0x42fff, 0x555000, IOGUARD_PERM_RW);
    expect_range(w.ranges[1], 0xffff800000042000ULL, 0xffff800000042fffULL,
                 0x557000, IOGUARD_PERM_RW);
    w = mappings(m, kDev, 0, 1000, 1000, kPasid, true);
    ASSERT_EQ(w.ranges.size(), 2u);
    expect_range(w.ranges[0], 0x42000, 0x43fff, 0x555000, IOGUARD_PERM_RW);
    // From an address in the upper half, only it.
    w = mappings(m, kDev, 0xffff000000000000ULL, 1000, 1000, kPasid, false);
    ASSERT_EQ(w.ranges.size(), 1u);
    EXPECT_EQ(w.ranges[0].target, 0x557000u);

    // PASID 0 as a PASID (a request with PASID 0 in its prefix): no sign
    // extension, and its page.
    w = mappings(m, kDev, 0, 1000, 1000, 0, false);
    ASSERT_EQ(w.ranges.size(), 1u);
    EXPECT_EQ(w.ranges[0].iova, 0x9000u);
    // A PASID the GCR3 table has no entry for reaches nothing, and that
    // is not malformed.
    w = mappings(m, kDev, 0, 1000, 1000, 6, false);
    EXPECT_EQ(w.result.dma, unsigned(IOGUARD_DMA_GUEST_TRANSLATED));
    EXPECT_TRUE(w.ranges.empty());
    EXPECT_EQ(w.result.malformed, 0u);
}

TEST_F(GuestMappingsTest, APasidGoesAsTranslatePasidDecides)
{
    // Beyond PASmax, and a DTE without guest tables: blocked, as the
    // request would be (an INVALID_DEVICE_REQUEST).
    EXPECT_EQ(mappings(m, kDev, 0, 1000, 1000, 0x10000, false).result.dma,
              unsigned(IOGUARD_DMA_BLOCKED));
    d.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_IR | DTE_FLAG_IW,
              kDomain);
    d.inv_dte(kDev);
    Walk w = mappings(m, kDev, 0, 1000, 1000, kPasid, false);
    EXPECT_EQ(w.result.dma, unsigned(IOGUARD_DMA_BLOCKED));
    EXPECT_TRUE(w.ranges.empty());
    // No valid DTE: untranslated, all of memory.
    d.set_dte(kDev, 0);
    w = mappings(m, kDev, 0, 1000, 1000, kPasid, false);
    EXPECT_EQ(w.result.dma, unsigned(IOGUARD_DMA_UNTRANSLATED));
    ASSERT_EQ(w.ranges.size(), 1u);
    expect_range(w.ranges[0], 0, ~uint64_t{0}, 0, IOGUARD_PERM_RW);
}

TEST_F(GuestMappingsTest, MalformedEntriesAreCountedAndReachNothing)
{
    map(cr3, 0x1000, 0x700000);
    // PS in a level-4 entry is reserved; a level-3 table outside RAM.
    m.w64(cr3 + 8, 0x800000 | kTableFlags | IOMMU_PAGE_PSE);
    m.w64(cr3 + 16, 0x7f00000000ULL | kTableFlags);
    const Walk w = mappings(m, kDev);
    ASSERT_EQ(w.ranges.size(), 1u);
    EXPECT_EQ(w.ranges[0].iova, 0x1000u);
    EXPECT_EQ(w.result.malformed, 2u);
    // A reserved GCR3 entry: one more, and nothing.
    m.w64(gcr3_table, cr3 | GCR3_VALID | GCR3_RESERVED);
    const Walk none = mappings(m, kDev);
    EXPECT_TRUE(none.ranges.empty());
    EXPECT_EQ(none.result.malformed, 1u);
}

TEST_F(GuestMappingsTest, TheTableBudgetStopsAndTheWalkGoesOn)
{
    // Four pages, each in its own level-1 table: 3 tables above them.
    for (uint64_t i = 0; i < 4; i++) {
        map(cr3, i << 21, 0x700000 + (i << 12));
    }
    Walk w = mappings(m, kDev, 0, 1000, 5);
    ASSERT_EQ(w.ranges.size(), 2u);
    EXPECT_TRUE(w.result.truncated);
    EXPECT_EQ(w.result.next_iova, 2u << 21);
    EXPECT_EQ(w.result.tables_read, 5u);
    w = mappings(m, kDev, w.result.next_iova, 1000, 5);
    ASSERT_EQ(w.ranges.size(), 2u);
    EXPECT_FALSE(w.result.truncated);
    EXPECT_EQ(w.ranges[0].iova, 2u << 21);
    EXPECT_EQ(w.ranges[1].iova, 3u << 21);
}

// Host tables under the guest's (DTE Mode 3): table addresses and pages
// are guest physical; a 2 MiB guest page over 4 KiB host pages comes in
// pieces with the host's permissions, and what the host does not map is
// not reached.
TEST_F(GuestMappingsTest, HostTablesCutGuestPagesIntoTheirs)
{
    constexpr uint64_t kGuestRamOffset = 0x800000;  // GPA x is SPA x + this
    const uint64_t host_root = d.alloc_table();
    auto gpa_of = [&](uint64_t spa) { return spa - kGuestRamOffset; };
    const uint64_t gcr3 = d.alloc_table(), l4 = d.alloc_table(),
                   l3 = d.alloc_table(), l2 = d.alloc_table();
    for (uint64_t t : {gcr3, l4, l3, l2}) {
        d.map(host_root, 3, gpa_of(t), t, true, false);
    }
    m.w64(gcr3, gpa_of(l4) | GCR3_VALID);
    m.w64(l4, gpa_of(l3) | kTableFlags);
    m.w64(l3 + 8, gpa_of(l2) | kTableFlags);                 // 1 GiB up
    m.w64(l2, 0x200000 | kLeafFlags | IOMMU_PAGE_PSE);      // 2 MiB page
    d.map(host_root, 3, 0x200000, 0x1000000, true, true);
    d.map(host_root, 3, 0x201000, 0x1001000, true, true);
    d.map(host_root, 3, 0x202000, 0x1002000, true, false);
    const GuestDte dte = guest_dte(gpa_of(gcr3), 0, GUEST_PGTABLE_4_LEVEL,
                                   host_root, 3);
    d.set_dte(kDev, dte.q0, dte.q1, dte.q2);
    d.inv_dte(kDev);

    const uint64_t gva = 1ULL << 30;
    Walk w = mappings(m, kDev);
    EXPECT_EQ(w.result.malformed, 0u);
    ASSERT_EQ(w.ranges.size(), 2u);
    expect_range(w.ranges[0], gva, gva + 0x1fff, 0x1000000, IOGUARD_PERM_RW);
    expect_range(w.ranges[1], gva + 0x2000, gva + 0x2fff, 0x1002000,
                 IOGUARD_PERM_READ);
    // By entry: the host's pages; and each agrees with a translation.
    w = page_entries(m, kDev);
    ASSERT_EQ(w.ranges.size(), 3u);
    expect_range(w.ranges[1], gva + 0x1000, gva + 0x1fff, 0x1001000,
                 IOGUARD_PERM_RW);
    for (const IoguardMapping &r : w.ranges) {
        const auto t = d.translate(kDev, r.iova, IOGUARD_PERM_READ);
        EXPECT_EQ(t.translated_addr, r.target);
        EXPECT_EQ(t.perm, r.perm);
    }
    // Each host walk counts against the budget: 4 tables, 512 host walks
    // of the page and 3 of the tables below the GCR3 table's.
    EXPECT_EQ(w.result.tables_read, 3u + 3u + 512u);
}

} // namespace
