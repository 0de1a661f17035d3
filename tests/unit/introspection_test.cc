// What the monitor asks: "what can this device reach?" (a fresh walk of the
// guest's tables, coalesced), its decoded DTE and interrupt table.
#include <gtest/gtest.h>

#include "mapping_walk.hh"
#include "translated_test.hh"

using namespace ioguard_test;

namespace {

constexpr uint16_t kDev = 0x0100;
constexpr uint16_t kDomain = 9;
constexpr uint64_t kPde = IOMMU_PTE_PR | IOMMU_PTE_IR | IOMMU_PTE_IW;

using MappingsTest = TranslatedTest<kDev, kDomain>;

TEST_F(MappingsTest, ContiguousPagesCoalesceOthersDoNot)
{
    // 3 pages contiguous in IOVA and memory, then one elsewhere in memory,
    // then one with other permissions.
    for (uint64_t i = 0; i < 3; i++) {
        d.map(root, 3, 0x10000 + (i << 12), 0x80000 + (i << 12), true, true);
    }
    d.map(root, 3, 0x13000, 0x90000, true, true);
    d.map(root, 3, 0x14000, 0x91000, true, false);
    const Walk w = mappings(m, kDev);
    EXPECT_EQ(w.result.dma, unsigned(IOGUARD_DMA_TRANSLATED));
    EXPECT_FALSE(w.result.truncated);
    ASSERT_EQ(w.ranges.size(), 3u);
    EXPECT_EQ(w.ranges[0].iova, 0x10000u);
    EXPECT_EQ(w.ranges[0].last, 0x12fffu);
    EXPECT_EQ(w.ranges[0].target, 0x80000u);
    EXPECT_EQ(w.ranges[0].perm, unsigned(IOGUARD_PERM_RW));
    EXPECT_EQ(w.ranges[1].iova, 0x13000u);
    EXPECT_EQ(w.ranges[1].last, 0x13fffu);
    EXPECT_EQ(w.ranges[1].target, 0x90000u);
    EXPECT_EQ(w.ranges[2].iova, 0x14000u);
    EXPECT_EQ(w.ranges[2].perm, unsigned(IOGUARD_PERM_READ));
}

TEST_F(MappingsTest, EveryRangeTranslatesAsTheWalkSays)
{
    d.map(root, 3, 0x200000, 0x400000, true, true, 2);   // a 2 MiB page
    d.map(root, 3, 0x7ff000, 0x123000, false, true);
    const Walk w = mappings(m, kDev);
    ASSERT_EQ(w.ranges.size(), 2u);
    for (const auto &r : w.ranges) {
        for (uint64_t a = r.iova; a <= r.last; a += 0x1000) {
            const auto t = d.translate(kDev, a, IOGUARD_PERM_NONE);
            EXPECT_EQ(t.translated_addr + (a & t.addr_mask),
                      r.target + (a - r.iova));
            EXPECT_EQ(t.perm, r.perm);
        }
    }
    EXPECT_EQ(w.ranges[0].last - w.ranges[0].iova + 1, 2u << 20);
}

TEST_F(MappingsTest, UnmappedWithoutInvalidationIsGoneAtOnce)
{
    d.map(root, 3, 0x10000, 0x80000, true, true);
    d.translate(kDev, 0x10000, IOGUARD_PERM_READ);  // now in the IOTLB
    m.w64(d.pte_address(root, 3, 0x10000), 0);
    EXPECT_TRUE(mappings(m, kDev).ranges.empty());
}

TEST_F(MappingsTest, PermissionsAndTheDteGateAreApplied)
{
    d.map(root, 3, 0x10000, 0x80000, true, true);
    // IW=0 on the DTE: read-only whatever the PTEs say.
    d.set_dte(kDev, Driver::dte_translated(root, 3) & ~DTE_FLAG_IW, kDomain);
    const Walk w = mappings(m, kDev);
    ASSERT_EQ(w.ranges.size(), 1u);
    EXPECT_EQ(w.ranges[0].perm, unsigned(IOGUARD_PERM_READ));
}

TEST_F(MappingsTest, StartAndMaxRangesPage)
{
    for (uint64_t i = 0; i < 10; i++) {
        d.map(root, 3, i << 21, 0x100000 * (i + 1), true, true);
    }
    Walk w = mappings(m, kDev, 0, 4);
    ASSERT_EQ(w.ranges.size(), 4u);
    EXPECT_TRUE(w.result.truncated);
    EXPECT_EQ(w.result.next_iova, 4u << 21);
    w = mappings(m, kDev, w.result.next_iova + 0x800, 100);
    ASSERT_EQ(w.ranges.size(), 6u);
    EXPECT_FALSE(w.result.truncated);
    EXPECT_EQ(w.ranges[0].iova, (4u << 21) + 0x800);    // clipped to start
    EXPECT_EQ(w.ranges[0].target, 0x500800u);
}

TEST_F(MappingsTest, ByPageEntryNothingCoalescesNorIsClipped)
{
    // What vfio is told: contiguous pages stay pages, and a 2 MiB page
    // asked for from its middle comes whole, aligned.
    for (uint64_t i = 0; i < 3; i++) {
        d.map(root, 3, 0x10000 + (i << 12), 0x80000 + (i << 12), true, true);
    }
    d.map(root, 3, 0x200000, 0x400000, true, false, 2);
    Walk w = page_entries(m, kDev);
    ASSERT_EQ(w.ranges.size(), 4u);
    for (uint64_t i = 0; i < 3; i++) {
        EXPECT_EQ(w.ranges[i].iova, 0x10000 + (i << 12));
        EXPECT_EQ(w.ranges[i].last, 0x10fff + (i << 12));
        EXPECT_EQ(w.ranges[i].target, 0x80000 + (i << 12));
    }
    EXPECT_EQ(w.ranges[3].iova, 0x200000u);
    EXPECT_EQ(w.ranges[3].last, 0x3fffffu);
    EXPECT_EQ(w.ranges[3].perm, unsigned(IOGUARD_PERM_READ));
    w = page_entries(m, kDev, 0x280000);
    ASSERT_EQ(w.ranges.size(), 1u);
    EXPECT_EQ(w.ranges[0].iova, 0x200000u);
    EXPECT_EQ(w.ranges[0].target, 0x400000u);
    // Up to end: the entries that begin at or below it.
    w = page_entries(m, kDev, 0x10800, 0x11000);
    ASSERT_EQ(w.ranges.size(), 2u);
    EXPECT_EQ(w.ranges[0].iova, 0x10000u);
    EXPECT_EQ(w.ranges[1].iova, 0x11000u);
    EXPECT_FALSE(w.result.truncated);
}

TEST_F(MappingsTest, ByPageEntryPassthroughHasNone)
{
    d.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_IR, kDomain);
    EXPECT_EQ(mappings(m, kDev).ranges.size(), 1u);
    const Walk w = page_entries(m, kDev);
    EXPECT_EQ(w.result.dma, unsigned(IOGUARD_DMA_PASSTHROUGH));
    EXPECT_TRUE(w.ranges.empty());
}

TEST_F(MappingsTest, LookupPageIsThePageHoldingTheIova)
{
    d.map(root, 3, 0x10000, 0x80000, true, false);
    d.map(root, 3, 0x200000, 0x400000, true, true, 2);   // 2 MiB
    IoguardMapping p;
    ASSERT_TRUE(ioguard_iommu_lookup_page(m.iommu, kDev, 0x10abc, &p));
    EXPECT_EQ(p.iova, 0x10000u);
    EXPECT_EQ(p.last, 0x10fffu);
    EXPECT_EQ(p.target, 0x80000u);
    EXPECT_EQ(p.perm, unsigned(IOGUARD_PERM_READ));
    ASSERT_TRUE(ioguard_iommu_lookup_page(m.iommu, kDev, 0x3ff000, &p));
    EXPECT_EQ(p.iova, 0x200000u);
    EXPECT_EQ(p.last, 0x3fffffu);
    EXPECT_EQ(p.target, 0x400000u);
    EXPECT_FALSE(ioguard_iommu_lookup_page(m.iommu, kDev, 0x11000, &p));
    // Passthrough has no pages.
    d.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_IR, kDomain);
    EXPECT_FALSE(ioguard_iommu_lookup_page(m.iommu, kDev, 0x10000, &p));
}

TEST_F(MappingsTest, SharedSubtablesCannotMakeItEndless)
{
    // Every entry of each level points at the same table of the level
    // below, down to one level-1 table of 512 pages: 128 x 512^4 x 512
    // leaves from 6 tables. The walk stops at its table budget.
    d.set_dte(kDev, Driver::dte_translated(root, 6), kDomain);
    const uint64_t l1 = d.alloc_table();
    for (unsigned i = 0; i < 512; i++) {
        m.w64(l1 + 8 * i, (0x80000 + (uint64_t(i) << 12)) | kPde);
    }
    uint64_t l2 = d.alloc_table();
    for (unsigned i = 0; i < 512; i++) {
        m.w64(l2 + 8 * i, l1 | kPde | 1ULL << IOMMU_PTE_NEXT_LEVEL_SHIFT);
    }
    uint64_t below = l2;
    for (unsigned level = 3; level <= 5; level++) {
        const uint64_t t = d.alloc_table();
        for (unsigned i = 0; i < 512; i++) {
            m.w64(t + 8 * i,
                  below | kPde | uint64_t(level - 1) << IOMMU_PTE_NEXT_LEVEL_SHIFT);
        }
        below = t;
    }
    for (unsigned i = 0; i < 128; i++) {
        m.w64(root + 8 * i, below | kPde | 5ULL << IOMMU_PTE_NEXT_LEVEL_SHIFT);
    }
    const Walk w = mappings(m, kDev, 0, 1u << 20, 100);
    EXPECT_TRUE(w.result.truncated);
    EXPECT_EQ(w.result.tables_read, 100u);
    EXPECT_GT(w.result.next_iova, 0u);
    // Each level-1 table maps 2 MiB contiguously; consecutive ones do not
    // continue in memory, so each is a range.
    ASSERT_FALSE(w.ranges.empty());
    EXPECT_EQ(w.ranges[0].last - w.ranges[0].iova + 1, 2u << 20);
    // Going on from next_iova makes progress.
    const Walk more = mappings(m, kDev, w.result.next_iova, 1u << 20, 100);
    ASSERT_FALSE(more.ranges.empty());
    EXPECT_GE(more.ranges[0].iova, w.result.next_iova);
}

TEST_F(MappingsTest, SkippedLevelsOnlyCoverIovasWithZeroIndexBits)
{
    // Mode 3 root entry 0 points straight at a level-1 table (skipping 2).
    const uint64_t l1 = d.alloc_table();
    m.w64(root, l1 | kPde | 1ULL << IOMMU_PTE_NEXT_LEVEL_SHIFT);
    m.w64(l1 + 8 * 5, 0x77000 | kPde);
    const Walk w = mappings(m, kDev);
    ASSERT_EQ(w.ranges.size(), 1u);
    EXPECT_EQ(w.ranges[0].iova, 0x5000u);
    EXPECT_EQ(w.ranges[0].target, 0x77000u);
    // 2 MiB + 0x5000 uses a skipped index: it faults, and is not listed.
    EXPECT_EQ(d.translate(kDev, 0x205000, IOGUARD_PERM_READ).perm, 0u);
}

TEST_F(MappingsTest, MalformedEntriesReachNothingAndAreCounted)
{
    m.w64(root + 8, 0x12345000 | kPde | IOMMU_PTE_RESERVED);
    m.w64(root + 16, d.alloc_table() | kPde | 5ULL << IOMMU_PTE_NEXT_LEVEL_SHIFT);
    const Walk w = mappings(m, kDev);
    EXPECT_TRUE(w.ranges.empty());
    EXPECT_EQ(w.result.malformed, 2u);
}

TEST_F(MappingsTest, UntranslatedAndPassthroughAreOneIdentityRange)
{
    d.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_IR, kDomain);     // pt, read only
    Walk w = mappings(m, kDev);
    EXPECT_EQ(w.result.dma, unsigned(IOGUARD_DMA_PASSTHROUGH));
    ASSERT_EQ(w.ranges.size(), 1u);
    EXPECT_EQ(w.ranges[0].iova, 0u);
    EXPECT_EQ(w.ranges[0].last, ~uint64_t{0});
    EXPECT_EQ(w.ranges[0].target, 0u);
    EXPECT_EQ(w.ranges[0].perm, unsigned(IOGUARD_PERM_READ));

    d.set_dte(kDev, DTE_FLAG_V, kDomain);   // pt with IR=IW=0: blocked
    w = mappings(m, kDev);
    EXPECT_EQ(w.result.dma, unsigned(IOGUARD_DMA_PASSTHROUGH));
    EXPECT_TRUE(w.ranges.empty());

    d.set_dte(kDev, 0);
    w = mappings(m, kDev);
    EXPECT_EQ(w.result.dma, unsigned(IOGUARD_DMA_UNTRANSLATED));
    ASSERT_EQ(w.ranges.size(), 1u);
    EXPECT_EQ(w.ranges[0].perm, unsigned(IOGUARD_PERM_RW));
}

TEST(DeviceInfo, DecodesTheEntryInMemoryAndSeesAStaleCachedCopy)
{
    Machine m;
    Driver d{m};
    d.enable();
    const uint64_t root = d.alloc_table();
    d.set_dte(kDev, Driver::dte_translated(root, 3), kDomain,
              DTE_IRQ_IV | 9ULL << DTE_IRQ_TABLE_LEN_SHIFT | 0x500000 |
                  2ULL << DTE_IRQ_INTCTL_SHIFT | DTE_IRQ_NMIPASS);
    IoguardTranslation t;
    ioguard_iommu_translate(m.iommu, kDev, 0x1000, IOGUARD_PERM_NONE, &t);

    IoguardDeviceInfo info;
    ioguard_iommu_read_device(m.iommu, kDev, &info);
    EXPECT_TRUE(info.iommu_enabled);
    EXPECT_TRUE(info.readable);
    EXPECT_EQ(info.dte_address, kDevTable + kDev * 32u);
    EXPECT_EQ(info.dma, unsigned(IOGUARD_DMA_TRANSLATED));
    EXPECT_EQ(info.mode, 3u);
    EXPECT_EQ(info.page_table_root, root);
    EXPECT_EQ(info.domain_id, kDomain);
    EXPECT_TRUE(info.read_allowed && info.write_allowed);
    EXPECT_TRUE(info.interrupt_valid);
    EXPECT_EQ(info.interrupt_table_entries, 512u);
    EXPECT_EQ(info.interrupt_table_root, 0x500000u);
    EXPECT_EQ(info.interrupt_control, 2u);
    EXPECT_TRUE(info.nmi_pass);
    EXPECT_FALSE(info.init_pass);
    EXPECT_FALSE(info.cached_copy_stale);

    // The guest changes the entry and forgets INVALIDATE_DEVTAB_ENTRY.
    d.set_dte(kDev, Driver::dte_translated(root, 4), kDomain + 1);
    ioguard_iommu_read_device(m.iommu, kDev, &info);
    EXPECT_EQ(info.mode, 4u);
    EXPECT_TRUE(info.cached_copy_stale);
    d.inv_dte(kDev);
    ioguard_iommu_read_device(m.iommu, kDev, &info);
    EXPECT_FALSE(info.cached_copy_stale);

    ioguard_iommu_read_device(m.iommu, 0xffff, &info);  // table has 0x1ff+1 pages
    EXPECT_TRUE(info.readable);
    m.mmio_write(MMIO_DEV_TABLE_OFFSET, kDevTable);   // one page: 128 entries
    ioguard_iommu_read_device(m.iommu, 0x0100, &info);
    EXPECT_TRUE(info.beyond_table);
    EXPECT_FALSE(info.readable);
    EXPECT_EQ(info.dma, unsigned(IOGUARD_DMA_BLOCKED));
}

TEST(DeviceInfo, ListsTheInterruptEntriesInUse)
{
    Machine m;
    Driver d{m};
    d.enable();
    d.set_dte(kDev, 0, 0, DTE_IRQ_IV | 9ULL << DTE_IRQ_TABLE_LEN_SHIFT |
                              0x500000 | 2ULL << DTE_IRQ_INTCTL_SHIFT);
    // 32-bit IRTEs (GAEn clear): entry 3 vector 0x41 to APIC 2, entry 7
    // allocated but not enabled.
    m.w32(0x500000 + 3 * 4, IRTE_REMAP_EN | 0x41u << 16 | 2u << 8);
    m.w32(0x500000 + 7 * 4, 0x55u << 16);
    std::vector<IoguardIrte> entries;
    ASSERT_TRUE(ioguard_iommu_for_each_irte(
        m.iommu, kDev,
        [](const IoguardIrte *e, void *o) {
            static_cast<std::vector<IoguardIrte> *>(o)->push_back(*e);
        },
        &entries));
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].index, 3u);
    EXPECT_TRUE(entries[0].remap_enabled);
    EXPECT_EQ(entries[0].vector, 0x41);
    EXPECT_EQ(entries[0].destination, 2u);
    EXPECT_EQ(entries[1].index, 7u);
    EXPECT_FALSE(entries[1].remap_enabled);
}

} // namespace
