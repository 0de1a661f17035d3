// v1 page walks: every level count, page size, skipping, permissions and
// malformed tables.
#include <gtest/gtest.h>

#include "fake_guest.hh"

using namespace ioguard_test;

namespace {

constexpr uint16_t kDev = 0x0010;
constexpr uint16_t kDomain = 7;

struct WalkTest : ::testing::Test {
    Machine m;
    Driver d{m};
    void SetUp() override { d.enable(); }

    uint64_t translated(unsigned mode, uint64_t root)
    {
        return Driver::dte_translated(root, mode);
    }
};

TEST(WalkLevels, EveryModeFromOneToSix)
{
    for (unsigned mode = 1; mode <= 6; mode++) {
        Machine m;
        Driver d{m};
        d.enable();
        const uint64_t root = d.alloc_table();
        // An IOVA that uses every level's index bits the mode covers.
        const uint64_t iova = mode == 6 ? 0x8123456789abc000ULL
                                        : (0x5ULL << (12 + 9 * (mode - 1))) |
                                              0x3000;
        d.map(root, mode, iova, 0x777000, true, true);
        d.set_dte(kDev, Driver::dte_translated(root, mode), kDomain);
        const auto t = d.translate(kDev, iova | 0x123, IOGUARD_PERM_READ);
        EXPECT_EQ(t.perm, unsigned(IOGUARD_PERM_RW)) << "mode " << mode;
        EXPECT_EQ(t.translated_addr, 0x777000u) << "mode " << mode;
        EXPECT_EQ(t.addr_mask, 0xfffu);
        EXPECT_EQ(d.stats().page_walk_levels, mode) << "one read per level";
        EXPECT_TRUE(d.events().empty());
    }
}

TEST_F(WalkTest, IovaAboveWhatTheModeCoversFaults)
{
    const uint64_t root = d.alloc_table();
    d.set_dte(kDev, translated(3, root), kDomain);
    const uint64_t iova = 1ULL << 39;
    EXPECT_EQ(d.translate(kDev, iova, IOGUARD_PERM_READ).perm, 0u);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_IO_FAULT));
    EXPECT_EQ(ev[0].address, iova);
}

TEST_F(WalkTest, DefaultSizeLeafAtLevelTwoIsTwoMegabytes)
{
    const uint64_t root = d.alloc_table();
    d.map(root, 3, 0x40200000, 0x800000, true, false, 2);
    d.set_dte(kDev, translated(3, root), kDomain);
    const auto t = d.translate(kDev, 0x40212345, IOGUARD_PERM_READ);
    EXPECT_EQ(t.perm, unsigned(IOGUARD_PERM_READ));
    EXPECT_EQ(t.translated_addr, 0x800000u);
    EXPECT_EQ(t.addr_mask, (2u << 20) - 1);
}

TEST_F(WalkTest, DefaultSizeLeafAtLevelThreeIsOneGigabyte)
{
    const uint64_t root = d.alloc_table();
    d.map(root, 4, 0x80000000, 0x40000000, true, true, 3);
    d.set_dte(kDev, translated(4, root), kDomain);
    const auto t = d.translate(kDev, 0x80000000 + 0x1234567, IOGUARD_PERM_WRITE);
    EXPECT_EQ(t.perm, unsigned(IOGUARD_PERM_RW));
    EXPECT_EQ(t.translated_addr, 0x40000000u);
    EXPECT_EQ(t.addr_mask, (1u << 30) - 1);
}

// NextLevel=7: replicated entries, size in the address's low 1 bits.
void map_large(Driver &d, uint64_t table, unsigned level, uint64_t iova,
               uint64_t pa, uint64_t size)
{
    const uint64_t entry = 1ULL << (12 + 9 * (level - 1));
    uint64_t addr = pa | ((size / 2 - 1) & ~0xfffULL);
    for (uint64_t off = 0; off < size; off += entry) {
        const uint64_t idx = ((iova + off) >> (12 + 9 * (level - 1))) & 0x1ff;
        d.m.w64(table + idx * 8, addr | IOMMU_PTE_PR | IOMMU_PTE_IR |
                                     IOMMU_PTE_IW | 7ULL << 9);
    }
}

TEST_F(WalkTest, NextLevelSevenPagesAtLevelOne)
{
    for (uint64_t size : {8192ULL, 65536ULL, 1ULL << 20}) {
        Machine m2;
        Driver d2{m2};
        d2.enable();
        const uint64_t root = d2.alloc_table();
        d2.map(root, 3, 0x100000, 0, true, true);   // builds L3/L2/L1
        const uint64_t l1 = d2.pte_address(root, 3, 0x100000) & ~0xfffULL;
        const uint64_t iova = 0x100000;
        map_large(d2, l1, 1, iova, 0x2000000, size);
        d2.set_dte(kDev, Driver::dte_translated(root, 3), kDomain);
        const auto t = d2.translate(kDev, iova + size - 8, IOGUARD_PERM_READ);
        EXPECT_EQ(t.perm, unsigned(IOGUARD_PERM_RW)) << size;
        EXPECT_EQ(t.translated_addr, 0x2000000u) << size;
        EXPECT_EQ(t.addr_mask, size - 1) << size;
    }
}

TEST_F(WalkTest, NextLevelSevenPageAtLevelTwo)
{
    const uint64_t root = d.alloc_table();
    d.map(root, 3, 0, 0, true, true);
    const uint64_t l2 = m.r64(root) & IOMMU_PTE_ADDR_MASK;
    map_large(d, l2, 2, 0x800000, 0x1800000 & ~((4ULL << 20) - 1), 4ULL << 20);
    d.set_dte(kDev, translated(3, root), kDomain);
    const auto t = d.translate(kDev, 0x800000 + (3ULL << 20), IOGUARD_PERM_READ);
    EXPECT_EQ(t.perm, unsigned(IOGUARD_PERM_RW));
    EXPECT_EQ(t.addr_mask, (4ULL << 20) - 1);
    EXPECT_EQ(t.translated_addr, 0x1800000u & ~((4ULL << 20) - 1));
}

TEST_F(WalkTest, NextLevelSevenNoLargerThanTheEntryIsReserved)
{
    const uint64_t root = d.alloc_table();
    d.map(root, 3, 0, 0, true, true);
    const uint64_t l2 = m.r64(root) & IOMMU_PTE_ADDR_MASK;
    // Address bit 12 clear: an 8 KiB page, in a level-2 table whose entries
    // already map 2 MiB each.
    m.w64(l2, 0x300000 | IOMMU_PTE_PR | IOMMU_PTE_IR | 7ULL << 9);
    d.set_dte(kDev, translated(3, root), kDomain);
    EXPECT_EQ(d.translate(kDev, 0, IOGUARD_PERM_READ).perm, 0u);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_IO_FAULT));
    EXPECT_TRUE(ev[0].flags & EVENT_FLAG_RZ);
}

TEST_F(WalkTest, LevelSkippingFromThreeToOne)
{
    const uint64_t root = d.alloc_table();
    const uint64_t l1 = d.alloc_table();
    // L3 entry 0 points straight at a level-1 table.
    m.w64(root, l1 | IOMMU_PTE_PR | IOMMU_PTE_IR | IOMMU_PTE_IW | 1ULL << 9);
    m.w64(l1 + 5 * 8, 0x555000 | IOMMU_PTE_PR | IOMMU_PTE_IR | IOMMU_PTE_IW);
    d.set_dte(kDev, translated(3, root), kDomain);
    auto t = d.translate(kDev, 0x5000, IOGUARD_PERM_WRITE);
    EXPECT_EQ(t.translated_addr, 0x555000u);
    EXPECT_EQ(t.perm, unsigned(IOGUARD_PERM_RW));
    EXPECT_EQ(d.stats().page_walk_levels, 2u);
    // An IOVA that needs the skipped level-2 index is outside the tables.
    EXPECT_EQ(d.translate(kDev, 0x200000 | 0x5000, IOGUARD_PERM_READ).perm, 0u);
    EXPECT_EQ(d.events().size(), 1u);
}

TEST_F(WalkTest, NextLevelNotBelowTheCurrentLevelIsReserved)
{
    const uint64_t root = d.alloc_table();
    // A PDE pointing back at its own table with the same level: a loop in
    // the tables. It must end after one read.
    m.w64(root, root | IOMMU_PTE_PR | IOMMU_PTE_IR | IOMMU_PTE_IW | 3ULL << 9);
    d.set_dte(kDev, translated(3, root), kDomain);
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).perm, 0u);
    EXPECT_EQ(d.stats().page_walk_levels, 1u);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_TRUE(ev[0].flags & EVENT_FLAG_RZ);
    EXPECT_FALSE(m.guest_errors.empty());
}

TEST_F(WalkTest, ReservedBitsInAnEntryFault)
{
    const uint64_t root = d.alloc_table();
    d.map(root, 3, 0x1000, 0x9000, true, true);
    const uint64_t pte = d.pte_address(root, 3, 0x1000);
    m.w64(pte, m.r64(pte) | 1ULL << 55);
    d.set_dte(kDev, translated(3, root), kDomain);
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).perm, 0u);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_IO_FAULT));
    EXPECT_TRUE(ev[0].flags & EVENT_FLAG_RZ);
}

TEST_F(WalkTest, PermissionsCombineAlongTheWalk)
{
    const uint64_t root = d.alloc_table();
    d.map(root, 3, 0x1000, 0x9000, true, true);
    // Take IW away at the level-2 PDE: the leaf's IW no longer counts.
    const uint64_t l3e = m.r64(root);
    const uint64_t l2 = l3e & IOMMU_PTE_ADDR_MASK;
    m.w64(l2, m.r64(l2) & ~IOMMU_PTE_IW);
    d.set_dte(kDev, translated(3, root), kDomain);
    auto t = d.translate(kDev, 0x1000, IOGUARD_PERM_READ);
    EXPECT_EQ(t.perm, unsigned(IOGUARD_PERM_READ));
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_WRITE).perm, 0u);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_IO_FAULT));
    EXPECT_TRUE(ev[0].flags & EVENT_FLAG_RW);
    EXPECT_TRUE(ev[0].flags & EVENT_FLAG_PR);
    EXPECT_FALSE(ev[0].flags & EVENT_FLAG_I);
}

TEST_F(WalkTest, DtePermissionsCombineWithTheTables)
{
    const uint64_t root = d.alloc_table();
    d.map(root, 3, 0x1000, 0x9000, true, true);
    d.set_dte(kDev, translated(3, root) & ~DTE_FLAG_IR, kDomain);
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).perm, 0u);
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_WRITE).perm,
              unsigned(IOGUARD_PERM_WRITE));
}

TEST_F(WalkTest, TableOutsideRamIsAPageTableHardwareError)
{
    const uint64_t root = d.alloc_table();
    const uint64_t far = 0x1000000000ULL;   // 64 GiB: no RAM there
    m.w64(root, far | IOMMU_PTE_PR | IOMMU_PTE_IR | IOMMU_PTE_IW | 2ULL << 9);
    d.set_dte(kDev, translated(3, root), kDomain);
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).perm, 0u);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_PAGE_TAB_ERR));
    EXPECT_EQ(ev[0].devid, kDev);
    EXPECT_EQ(ev[0].domain, kDomain);
    EXPECT_EQ(ev[0].address, far);  // index 0 of the unreachable table
}

} // namespace
