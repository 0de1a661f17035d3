// The IOTLB and its invalidation: hits, exactness, and no cached misses.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "translated_test.hh"

using namespace ioguard_test;

namespace {

constexpr uint16_t kDev = 0x0100;
constexpr uint16_t kDomain = 9;

using IotlbTest = TranslatedTest<kDev, kDomain>;

TEST_F(IotlbTest, SecondAccessHitsWithoutAWalk)
{
    d.map(root, 3, 0x10000, 0xa000, true, true);
    EXPECT_EQ(d.translate(kDev, 0x10010, IOGUARD_PERM_READ).translated_addr,
              0xa000u);
    EXPECT_EQ(d.translate(kDev, 0x10ff0, IOGUARD_PERM_WRITE).translated_addr,
              0xa000u);
    const IoguardStats s = d.stats();
    EXPECT_EQ(s.translations, 2u);
    EXPECT_EQ(s.iotlb_misses, 1u);
    EXPECT_EQ(s.iotlb_hits, 1u);
    EXPECT_EQ(s.page_walks, 1u);
    EXPECT_EQ(s.requesters, 1u);
}

TEST_F(IotlbTest, NotPresentIsNeverCached)
{
    EXPECT_EQ(d.translate(kDev, 0x20000, IOGUARD_PERM_READ).perm, 0u);
    // Linux maps without invalidating (NpCache=0): the next access must see it.
    d.map(root, 3, 0x20000, 0xb000, true, false);
    auto t = d.translate(kDev, 0x20000, IOGUARD_PERM_READ);
    EXPECT_EQ(t.perm, unsigned(IOGUARD_PERM_READ));
    EXPECT_EQ(t.translated_addr, 0xb000u);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_IO_FAULT));
    EXPECT_EQ(ev[0].devid, kDev);
    EXPECT_EQ(ev[0].domain, kDomain);
    EXPECT_EQ(ev[0].address, 0x20000u);
    EXPECT_EQ(ev[0].flags & (EVENT_FLAG_PR | EVENT_FLAG_I | EVENT_FLAG_RW), 0u);
}

TEST_F(IotlbTest, UnmapIsSeenOnlyAfterInvalidatePagesThenExactly)
{
    d.map(root, 3, 0x30000, 0xc000, true, true);
    ASSERT_EQ(d.translate(kDev, 0x30000, IOGUARD_PERM_READ).perm,
              unsigned(IOGUARD_PERM_RW));
    m.w64(d.pte_address(root, 3, 0x30000), 0);     // unmap
    // Lazy mode: the stale entry is still used until the flush.
    EXPECT_EQ(d.translate(kDev, 0x30000, IOGUARD_PERM_READ).translated_addr,
              0xc000u);
    d.inv_pages(kDomain, 0x30000, false);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_EQ(d.translate(kDev, 0x30000, IOGUARD_PERM_READ).perm, 0u);
}

TEST_F(IotlbTest, InvalidatePagesLeavesOtherDomainsAndPages)
{
    const uint16_t other_dev = 0x0101;
    const uint64_t other_root = d.alloc_table();
    d.set_dte(other_dev, Driver::dte_translated(other_root, 3), kDomain + 1);
    d.map(root, 3, 0x40000, 0x1000, true, true);
    d.map(root, 3, 0x41000, 0x2000, true, true);
    d.map(other_root, 3, 0x40000, 0x3000, true, true);
    for (uint64_t iova : {0x40000, 0x41000}) {
        d.translate(kDev, iova, IOGUARD_PERM_READ);
    }
    d.translate(other_dev, 0x40000, IOGUARD_PERM_READ);
    d.inv_pages(kDomain, 0x40000, false);
    ASSERT_TRUE(d.completion_wait());
    const uint64_t hits = d.stats().iotlb_hits;
    d.translate(kDev, 0x41000, IOGUARD_PERM_READ);
    d.translate(other_dev, 0x40000, IOGUARD_PERM_READ);
    EXPECT_EQ(d.stats().iotlb_hits, hits + 2);
    d.translate(kDev, 0x40000, IOGUARD_PERM_READ);
    EXPECT_EQ(d.stats().iotlb_hits, hits + 2);
}

TEST_F(IotlbTest, SizeBitSelectsANaturallyAlignedRange)
{
    for (uint64_t iova = 0x10000; iova < 0x14000; iova += 0x1000) {
        d.map(root, 3, iova, iova + 0x100000, true, true);
        d.translate(kDev, iova, IOGUARD_PERM_READ);
    }
    // Linux's encoding of 8 KiB at 0x10000: address 0x10000, S=1.
    d.inv_pages(kDomain, 0x10000, true);
    ASSERT_TRUE(d.completion_wait());
    const uint64_t misses = d.stats().iotlb_misses;
    for (uint64_t iova = 0x10000; iova < 0x14000; iova += 0x1000) {
        d.translate(kDev, iova, IOGUARD_PERM_READ);
    }
    EXPECT_EQ(d.stats().iotlb_misses, misses + 2) << "0x10000 and 0x11000";
}

TEST_F(IotlbTest, InvalidateAllEncodingFlushesTheDomain)
{
    for (uint64_t iova = 0; iova < 0x8000; iova += 0x1000) {
        d.map(root, 3, iova, iova + 0x100000, true, true);
        d.translate(kDev, iova, IOGUARD_PERM_READ);
    }
    ASSERT_GE(d.stats().iotlb_misses, 8u);
    d.inv_domain(kDomain);
    ASSERT_TRUE(d.completion_wait());
    const uint64_t misses = d.stats().iotlb_misses;
    for (uint64_t iova = 0; iova < 0x8000; iova += 0x1000) {
        d.translate(kDev, iova, IOGUARD_PERM_READ);
    }
    EXPECT_EQ(d.stats().iotlb_misses, misses + 8);
}

TEST_F(IotlbTest, InvalidatingAPartOfALargePageDropsAllOfIt)
{
    d.map(root, 3, 0x200000, 0x600000, true, true, 2);   // one 2 MiB page
    d.translate(kDev, 0x200000, IOGUARD_PERM_READ);
    d.translate(kDev, 0x3ff000, IOGUARD_PERM_READ);
    d.inv_pages(kDomain, 0x3ff000, false);
    ASSERT_TRUE(d.completion_wait());
    const uint64_t misses = d.stats().iotlb_misses;
    d.translate(kDev, 0x200000, IOGUARD_PERM_READ);
    EXPECT_EQ(d.stats().iotlb_misses, misses + 1);
}

TEST_F(IotlbTest, InvalidateIommuAll)
{
    d.map(root, 3, 0x1000, 0x5000, true, true);
    d.translate(kDev, 0x1000, IOGUARD_PERM_READ);
    m.w64(d.pte_address(root, 3, 0x1000), 0);
    d.queue(0, uint32_t(CMD_INV_ALL) << 28);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).perm, 0u);
}

TEST_F(IotlbTest, DisablingTheIommuDropsCachedTranslations)
{
    d.map(root, 3, 0x1000, 0x5000, true, true);
    d.translate(kDev, 0x1000, IOGUARD_PERM_READ);
    m.w64(d.pte_address(root, 3, 0x1000), 0);
    const uint64_t ctl = m.mmio_read(MMIO_CONTROL_OFFSET);
    m.mmio_write(MMIO_CONTROL_OFFSET, ctl & ~1ULL);
    m.mmio_write(MMIO_CONTROL_OFFSET, ctl);
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).perm, 0u);
}

TEST_F(IotlbTest, IdenticalFaultsCloseTogetherAreOneEvent)
{
    IoguardTranslation t;
    for (int i = 0; i < 64; i++) {   // a 256-byte DMA split into 4-byte steps
        ioguard_iommu_translate(m.iommu, kDev, 0x50000 + 4 * i,
                                IOGUARD_PERM_WRITE, &t);
    }
    EXPECT_EQ(d.events().size(), 1u);
    EXPECT_EQ(d.stats().faults, 64u);
}

TEST_F(IotlbTest, ConcurrentTranslationsAndInvalidations)
{
    for (uint64_t iova = 0; iova < 64 * 4096; iova += 4096) {
        d.map(root, 3, iova, 0x2000000 + iova, true, true);
    }
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> wrong{0};
    auto worker = [&] {
        uint64_t i = 0;
        while (!stop) {
            const uint64_t iova = (i++ % 64) * 4096;
            IoguardTranslation t;
            ioguard_iommu_translate(m.iommu, kDev, iova, IOGUARD_PERM_READ,
                                    &t);
            if (t.perm != IOGUARD_PERM_NONE &&
                t.translated_addr != 0x2000000 + iova) {
                wrong++;
            }
        }
    };
    std::thread a(worker), b(worker);
    for (int i = 0; i < 2000; i++) {
        d.inv_domain(kDomain);
    }
    ASSERT_TRUE(d.completion_wait());
    stop = true;
    a.join();
    b.join();
    EXPECT_EQ(wrong, 0u);
}

} // namespace

namespace {

// The page directory cache (the walk cache behind the PDE bit).
TEST_F(IotlbTest, NeighbouringPagesWalkOnlyTheLastLevel)
{
    d.map(root, 3, 0x1000, 0x5000, true, true);
    d.map(root, 3, 0x2000, 0x6000, true, true);
    d.translate(kDev, 0x1000, IOGUARD_PERM_READ);
    EXPECT_EQ(d.stats().page_walk_levels, 3u);
    EXPECT_EQ(d.translate(kDev, 0x2000, IOGUARD_PERM_READ).translated_addr,
              0x6000u);
    EXPECT_EQ(d.stats().page_walk_levels, 4u) << "one entry read";
}

TEST_F(IotlbTest, DirectoryEntriesGoWithPdeInvalidation)
{
    d.map(root, 3, 0x1000, 0x5000, true, true);
    d.translate(kDev, 0x1000, IOGUARD_PERM_READ);
    // Move the region to a new level-1 table, as a driver replacing tables.
    const uint64_t l2 = m.r64(root) & IOMMU_PTE_ADDR_MASK;
    const uint64_t new_l1 = d.alloc_table();
    m.w64(new_l1 + 2 * 8, 0x9000 | IOMMU_PTE_PR | IOMMU_PTE_IR | IOMMU_PTE_IW);
    m.w64(l2, new_l1 | IOMMU_PTE_PR | IOMMU_PTE_IR | IOMMU_PTE_IW | 1ULL << 9);
    // PDE=0 drops the leaf only: the cached directory still leads to the
    // old table, where 0x2000 is not mapped.
    d.inv_pages(kDomain, 0x2000, false, false);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_EQ(d.translate(kDev, 0x2000, IOGUARD_PERM_READ).perm, 0u);
    d.inv_pages(kDomain, 0x2000, false, true);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_EQ(d.translate(kDev, 0x2000, IOGUARD_PERM_READ).translated_addr,
              0x9000u);
}

TEST_F(IotlbTest, DirectoryEntriesAreTaggedWithTheRoot)
{
    d.map(root, 3, 0x1000, 0x5000, true, true);
    d.translate(kDev, 0x1000, IOGUARD_PERM_READ);
    // Same domain, other tables: another device of the domain, or a DTE
    // rewritten with a new root.
    const uint64_t other_root = d.alloc_table();
    d.map(other_root, 3, 0x2000, 0x7000, true, true);
    d.set_dte(kDev, Driver::dte_translated(other_root, 3), kDomain);
    d.inv_dte(kDev);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_EQ(d.translate(kDev, 0x2000, IOGUARD_PERM_READ).translated_addr,
              0x7000u);
}

} // namespace
