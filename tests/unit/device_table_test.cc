// Device table entry decode and validation.
#include <gtest/gtest.h>

#include "fake_guest.hh"

using namespace ioguard_test;

namespace {

constexpr uint16_t kDev = 0x0308;   // 03:01.0: a device behind a bridge

struct DteTest : ::testing::Test {
    Machine m;
    Driver d{m};
    void SetUp() override { d.enable(); }
};

TEST_F(DteTest, ValidClearMeansUntranslated)
{
    d.set_dte(kDev, 0);
    auto t = d.translate(kDev, 0x123456789, IOGUARD_PERM_WRITE);
    EXPECT_EQ(t.perm, unsigned(IOGUARD_PERM_RW));
    EXPECT_EQ(t.translated_addr | (0x123456789 & t.addr_mask), 0x123456789u);
    EXPECT_TRUE(d.events().empty());
}

TEST_F(DteTest, ModeZeroIsPassthroughGatedByIrIw)
{
    d.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_IR, 3);
    auto t = d.translate(kDev, 0x5000, IOGUARD_PERM_READ);
    EXPECT_EQ(t.perm, unsigned(IOGUARD_PERM_READ));
    EXPECT_EQ(t.translated_addr | (0x5000 & t.addr_mask), 0x5000u);
    EXPECT_EQ(d.translate(kDev, 0x5000, IOGUARD_PERM_WRITE).perm, 0u);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_IO_FAULT));
    EXPECT_EQ(ev[0].domain, 3u);
}

TEST_F(DteTest, BlockedEntryAsLinuxWritesIt)
{
    // init_device_table_dma: V=1, TV=1, Mode=0, IR=IW=0, domain 0.
    d.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_TV);
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).perm, 0u);
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_WRITE).perm, 0u);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0].devid, kDev);
    EXPECT_FALSE(ev[0].flags & EVENT_FLAG_RW);
    EXPECT_TRUE(ev[1].flags & EVENT_FLAG_RW);
}

TEST_F(DteTest, ReservedBitsAreAnIllegalDevTableEntry)
{
    for (auto [q0, q2, q3] :
         {std::tuple<uint64_t, uint64_t, uint64_t>{DTE_FLAG_V | 1ULL << 3, 0, 0},
          {DTE_FLAG_V | 1ULL << 63, 0, 0},
          {DTE_FLAG_V | DTE_FLAG_TV | 7ULL << DTE_MODE_SHIFT, 0, 0},
          {DTE_FLAG_V | DTE_FLAG_TV, 0, 1ULL << 50}}) {
        Machine m2;
        Driver d2{m2};
        d2.enable();
        d2.set_dte(kDev, q0 | DTE_FLAG_IR | DTE_FLAG_IW, 0, q2, q3);
        EXPECT_EQ(d2.translate(kDev, 0x4000, IOGUARD_PERM_READ).perm, 0u);
        auto ev = d2.events();
        ASSERT_EQ(ev.size(), 1u);
        EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_ILL_DEV));
        EXPECT_EQ(ev[0].devid, kDev);
        EXPECT_EQ(ev[0].address, 0x4000u);
        EXPECT_FALSE(m2.guest_errors.empty());
    }
}

TEST_F(DteTest, DeviceTableOutsideRamIsADevTabHardwareError)
{
    const uint64_t table = 0x2000000000ULL;
    m.mmio_write(MMIO_DEV_TABLE_OFFSET, table | 0x1ff);
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).perm, 0u);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_DEV_TAB_ERR));
    EXPECT_EQ(ev[0].address, table + kDev * 32u);
}

TEST_F(DteTest, RequesterBeyondTheDeviceTable)
{
    m.mmio_write(MMIO_DEV_TABLE_OFFSET, kDevTable | 0);    // 4 KiB: 128 DTEs
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).perm, 0u);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_ILL_DEV));
    EXPECT_EQ(d.translate(0x7f, 0x1000, IOGUARD_PERM_READ).perm,
              unsigned(IOGUARD_PERM_RW));   // the last DTE is still in
}

TEST_F(DteTest, IommuDisabledPassesEverything)
{
    Machine m2;
    Driver d2{m2};
    d2.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_TV);  // would block if enabled
    EXPECT_EQ(d2.translate(kDev, 0x1000, IOGUARD_PERM_WRITE).perm,
              unsigned(IOGUARD_PERM_RW));
    EXPECT_EQ(d2.stats().passthrough, 1u);
}

TEST_F(DteTest, CachedUntilInvalidated)
{
    d.set_dte(kDev, 0);
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).perm,
              unsigned(IOGUARD_PERM_RW));
    d.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_TV);
    // Real hardware may keep using the cached entry until it is invalidated.
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).perm,
              unsigned(IOGUARD_PERM_RW));
    d.inv_dte(kDev);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).perm, 0u);
}

} // namespace

namespace {

TEST_F(DteTest, IdentityAnswerFollowsTheDeviceTable)
{
    Machine m2;
    Driver d2{m2};
    EXPECT_TRUE(ioguard_iommu_dma_is_identity(m2.iommu, kDev)) << "IOMMU off";
    d2.enable();
    ASSERT_FALSE(m2.devtab_changes.empty());
    EXPECT_EQ(m2.devtab_changes.back(), -1);

    d2.set_dte(kDev, 0);
    EXPECT_TRUE(ioguard_iommu_dma_is_identity(m2.iommu, kDev)) << "V=0";
    d2.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_IR | DTE_FLAG_IW, 5);
    d2.inv_dte(kDev);
    EXPECT_EQ(m2.devtab_changes.back(), kDev);
    EXPECT_TRUE(ioguard_iommu_dma_is_identity(m2.iommu, kDev)) << "pt";

    d2.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_IR, 5);
    d2.inv_dte(kDev);
    EXPECT_FALSE(ioguard_iommu_dma_is_identity(m2.iommu, kDev)) << "read-only";
    d2.set_dte(kDev, Driver::dte_translated(d2.alloc_table(), 3), 5);
    d2.inv_dte(kDev);
    EXPECT_FALSE(ioguard_iommu_dma_is_identity(m2.iommu, kDev));
    d2.set_dte(kDev, DTE_FLAG_V | 1ULL << 3);
    d2.inv_dte(kDev);
    EXPECT_FALSE(ioguard_iommu_dma_is_identity(m2.iommu, kDev)) << "illegal";
    EXPECT_TRUE(d2.events().empty()) << "asking logs nothing";

    m2.mmio_write(MMIO_DEV_TABLE_OFFSET, 0x7000000000ULL | 0x1ff);
    EXPECT_FALSE(ioguard_iommu_dma_is_identity(m2.iommu, kDev));
    EXPECT_TRUE(d2.events().empty());
}

} // namespace
