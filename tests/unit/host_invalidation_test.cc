// What the host hears of invalidations, for translations it keeps outside
// the engine (QEMU's IOMMU notifiers: vhost's device IOTLB, VFIO's
// mappings): every range the IOTLB drops, exactly, and which domain a
// requester's DMA is translated in.
#include <gtest/gtest.h>

#include "translated_test.hh"

using namespace ioguard_test;

namespace {

constexpr uint16_t kDev = 0x0028;       // 00:05.0
constexpr uint16_t kDomain = 7;

using Told = Machine::PagesInvalidated;

struct HostInvalidationTest : TranslatedTest<kDev, kDomain> {
    void SetUp() override
    {
        TranslatedTest::SetUp();
        m.pages_invalidated.clear();    // what enabling the IOMMU said
        m.devtab_changes.clear();
    }
};

TEST_F(HostInvalidationTest, InvalidateIommuPagesOnePage)
{
    d.inv_pages(kDomain, 0x12345000, false);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_EQ(m.pages_invalidated,
              (std::vector<Told>{{kDomain, 0x12345000, 0x12345fff}}));
}

TEST_F(HostInvalidationTest, InvalidateIommuPagesNaturallyAlignedRange)
{
    // S=1 with bits 12..14 set, bit 15 clear: the 64 KiB around it.
    d.inv_pages(kDomain, 0x40007000, true);
    d.inv_domain(kDomain);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_EQ(m.pages_invalidated,
              (std::vector<Told>{{kDomain, 0x40000000, 0x4000ffff},
                                 {kDomain, 0, ~uint64_t{0}}}));
}

TEST_F(HostInvalidationTest, InvalidateIommuAllIsEveryDomain)
{
    d.queue(0, uint32_t(CMD_INV_ALL) << 28);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_EQ(m.pages_invalidated,
              (std::vector<Told>{{-1, 0, ~uint64_t{0}}}));
}

TEST_F(HostInvalidationTest, InvalidateIotlbPagesIsTheDevicesOnly)
{
    // As Linux's build_inv_iotlb_pages: devid, MaxPend 32, the queue ID
    // (the devid again), one page and then the 8 KiB around 0x40001000.
    const uint32_t dw0 = kDev | 32u << 24;
    const uint32_t dw1 = uint32_t(CMD_INV_IOTLB_PAGES) << 28 | kDev;
    d.queue(dw0, dw1, 0x12345000, 0);
    d.queue(dw0, dw1, 0x40000000 | CMD_INV_IOMMU_PAGES_SIZE_MASK, 0);
    ASSERT_TRUE(d.completion_wait());
    using Dev = Machine::DeviceIotlbInvalidated;
    EXPECT_EQ(m.device_iotlb_invalidations,
              (std::vector<Dev>{{kDev, 0x12345000, 0x12345fff},
                                {kDev, 0x40000000, 0x40001fff}}));
    // The IOMMU's own IOTLB is not the device's: nothing of it dropped.
    EXPECT_TRUE(m.pages_invalidated.empty());
}

TEST_F(HostInvalidationTest, PrefetchWithInvalInvalidatesFirst)
{
    d.map(root, 3, 0x10000, 0xa000, true, true);
    // PFCount 2 from 0x10000, Inval=1: the two pages' old translations go.
    d.queue(kDev | 2u << CMD_PREFETCH_PFCOUNT_SHIFT,
            uint32_t(CMD_PREFETCH_IOMMU_PAGES) << 28,
            0x10000 | CMD_PREFETCH_INVAL_MASK, 0);
    // Without Inval nothing is dropped.
    d.queue(kDev | 2u << CMD_PREFETCH_PFCOUNT_SHIFT,
            uint32_t(CMD_PREFETCH_IOMMU_PAGES) << 28, 0x10000, 0);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_EQ(m.pages_invalidated,
              (std::vector<Told>{{kDomain, 0x10000, 0x11fff}}));
}

TEST_F(HostInvalidationTest, DteInvalidationIsADeviceTableChange)
{
    d.inv_dte(kDev);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_TRUE(m.pages_invalidated.empty());
    EXPECT_EQ(m.devtab_changes, std::vector<int>{kDev});
}

TEST_F(HostInvalidationTest, TranslatingDomain)
{
    uint16_t domain = 0;
    ASSERT_TRUE(ioguard_iommu_translating_domain(m.iommu, kDev, &domain));
    EXPECT_EQ(domain, kDomain);
    // V=0: untranslated; passthrough (Mode 0): untranslated.
    EXPECT_FALSE(ioguard_iommu_translating_domain(m.iommu, 0x0030, &domain));
    d.set_dte(0x0030, DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_IR | DTE_FLAG_IW,
              kDomain);
    d.inv_dte(0x0030);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_FALSE(ioguard_iommu_translating_domain(m.iommu, 0x0030, &domain));
    // A guest's illegal entry (a reserved bit) or a device table that is
    // not in RAM: not translated, and asking logs nothing.
    d.set_dte(0x0030, Driver::dte_translated(root, 3) | 1ULL << 3, kDomain);
    d.inv_dte(0x0030);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_FALSE(ioguard_iommu_translating_domain(m.iommu, 0x0030, &domain));
    m.mmio_write(MMIO_DEV_TABLE_OFFSET, 0x7000000000ULL | 0x1ff);
    EXPECT_FALSE(ioguard_iommu_translating_domain(m.iommu, kDev, &domain));
    EXPECT_TRUE(d.events().empty());
    // The IOMMU off: nothing is translated.
    m.mmio_write(MMIO_CONTROL_OFFSET, 0);
    EXPECT_FALSE(ioguard_iommu_translating_domain(m.iommu, kDev, &domain));
}

} // namespace
