// Event log entries, the interrupt, overflow and restart, status W1C and
// register access widths.
#include <gtest/gtest.h>

#include "fake_guest.hh"

using namespace ioguard_test;

namespace {

constexpr uint16_t kDev = 0x0208;

struct EventLogTest : ::testing::Test {
    Machine m;
    Driver d{m};
    void SetUp() override
    {
        d.enable();
        d.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_TV, 0x55);   // blocked
    }
    void fault(uint64_t iova) { d.translate(kDev, iova, IOGUARD_PERM_WRITE); }
};

TEST_F(EventLogTest, IoPageFaultEntryIsArchitected)
{
    fault(0x123456789000ULL);
    const uint32_t dw0 = m.r32(kEventLog), dw1 = m.r32(kEventLog + 4);
    EXPECT_EQ(dw0, uint32_t(kDev));
    EXPECT_EQ(dw1 >> 28, unsigned(EVENT_TYPE_IO_FAULT));
    EXPECT_EQ(dw1 & 0xffff, 0x55u);
    EXPECT_EQ((dw1 >> 16) & 0xfff,
              unsigned(EVENT_FLAG_RW | EVENT_FLAG_PR | EVENT_FLAG_PE));
    EXPECT_EQ(m.r32(kEventLog + 8), 0x56789000u);
    EXPECT_EQ(m.r32(kEventLog + 12), 0x1234u);
    EXPECT_EQ(m.mmio_read(MMIO_EVT_TAIL_OFFSET, 4), 16u);
    EXPECT_EQ(m.interrupts, 1);
    EXPECT_TRUE(m.mmio_read(MMIO_STATUS_OFFSET, 4) & MMIO_STATUS_EVT_INT_MASK);
}

TEST_F(EventLogTest, StatusIsWriteOneToClear)
{
    fault(0x1000);
    const uint64_t st = m.mmio_read(MMIO_STATUS_OFFSET, 4);
    ASSERT_TRUE(st & MMIO_STATUS_EVT_INT_MASK);
    ASSERT_TRUE(st & MMIO_STATUS_EVT_RUN_MASK);
    // Writing 0 changes nothing; writing the run bits changes nothing.
    m.mmio_write(MMIO_STATUS_OFFSET, 0, 4);
    m.mmio_write(MMIO_STATUS_OFFSET, MMIO_STATUS_EVT_RUN_MASK |
                                         MMIO_STATUS_CMDBUF_RUN_MASK, 4);
    EXPECT_EQ(m.mmio_read(MMIO_STATUS_OFFSET, 4), st);
    m.mmio_write(MMIO_STATUS_OFFSET, MMIO_STATUS_EVT_INT_MASK, 4);
    EXPECT_EQ(m.mmio_read(MMIO_STATUS_OFFSET, 4),
              st & ~uint64_t{MMIO_STATUS_EVT_INT_MASK});
}

TEST_F(EventLogTest, NoInterruptWithoutEventIntEn)
{
    const uint64_t ctl = m.mmio_read(MMIO_CONTROL_OFFSET);
    m.mmio_write(MMIO_CONTROL_OFFSET, ctl & ~(1ULL << CONTROL_EVT_INT_EN));
    fault(0x1000);
    EXPECT_EQ(m.interrupts, 0);
    EXPECT_EQ(d.events().size(), 1u);
}

TEST_F(EventLogTest, NothingIsLoggedWhileTheLogIsOff)
{
    const uint64_t ctl = m.mmio_read(MMIO_CONTROL_OFFSET);
    m.mmio_write(MMIO_CONTROL_OFFSET, ctl & ~(1ULL << CONTROL_EVT_LOG_EN));
    fault(0x1000);
    EXPECT_EQ(m.mmio_read(MMIO_EVT_TAIL_OFFSET, 4), 0u);
    EXPECT_EQ(d.stats().events_dropped, 1u);
}

TEST_F(EventLogTest, OverflowStopsTheLogUntilItIsRestarted)
{
    for (int i = 0; i < 511; i++) {   // a 512-entry ring holds 511
        fault(0x1000 * (i + 1));
    }
    EXPECT_EQ(m.mmio_read(MMIO_EVT_TAIL_OFFSET, 4), 511u * 16);
    EXPECT_FALSE(m.mmio_read(MMIO_STATUS_OFFSET, 4) &
                 MMIO_STATUS_EVT_OVERFLOW_MASK);
    fault(0x9999000);
    uint64_t st = m.mmio_read(MMIO_STATUS_OFFSET, 4);
    EXPECT_TRUE(st & MMIO_STATUS_EVT_OVERFLOW_MASK);
    EXPECT_FALSE(st & MMIO_STATUS_EVT_RUN_MASK);
    EXPECT_EQ(m.mmio_read(MMIO_EVT_TAIL_OFFSET, 4), 511u * 16);

    // Linux 6.12's restart: drain, clear EventLogEn, W1C overflow, set it.
    EXPECT_EQ(d.events().size(), 511u);
    const uint64_t ctl = m.mmio_read(MMIO_CONTROL_OFFSET);
    m.mmio_write(MMIO_CONTROL_OFFSET, ctl & ~(1ULL << CONTROL_EVT_LOG_EN));
    m.mmio_write(MMIO_STATUS_OFFSET, MMIO_STATUS_EVT_OVERFLOW_MASK, 4);
    m.mmio_write(MMIO_CONTROL_OFFSET, ctl);
    st = m.mmio_read(MMIO_STATUS_OFFSET, 4);
    EXPECT_TRUE(st & MMIO_STATUS_EVT_RUN_MASK);
    fault(0xabc000);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].address, 0xabc000u);
}

TEST_F(EventLogTest, EventLogOutsideRamStopsTheLog)
{
    m.mmio_write(MMIO_EVT_BUF_OFFSET, 0x4000000000ULL | (8ULL << 56));
    fault(0x1000);
    EXPECT_FALSE(m.mmio_read(MMIO_STATUS_OFFSET, 4) & MMIO_STATUS_EVT_RUN_MASK);
    EXPECT_FALSE(m.guest_errors.empty());
    EXPECT_EQ(d.stats().events_dropped, 1u);
}

TEST_F(EventLogTest, BaseRegisterWrittenAsTwoHalvesLowFirst)
{
    Machine m2;
    m2.mmio_write(MMIO_EVT_BUF_OFFSET, 0x00410000, 4);
    m2.mmio_write(MMIO_EVT_BUF_OFFSET + 4, 0x09000000, 4);
    EXPECT_EQ(m2.mmio_read(MMIO_EVT_BUF_OFFSET), 0x0900000000410000ULL);
    for (unsigned i = 0; i < 8; i++) {   // byte-wise, as SEV guests do
        m2.mmio_write(MMIO_DEV_TABLE_OFFSET + i, (0x00000000002001ffULL >> (8 * i)) & 0xff, 1);
    }
    EXPECT_EQ(m2.mmio_read(MMIO_DEV_TABLE_OFFSET), 0x2001ffULL);
    EXPECT_EQ(m2.mmio_read(MMIO_DEV_TABLE_OFFSET + 1, 1), 0x01u);
}

TEST_F(EventLogTest, ControlReadsBackWhatWasWritten)
{
    Machine m2;
    const uint64_t v = 1ULL << CONTROL_COHERENT_EN | 4ULL << CONTROL_INV_TIMEOUT |
                       1ULL << CONTROL_GA_EN | 1ULL << CONTROL_XT_EN;
    m2.mmio_write(MMIO_CONTROL_OFFSET, v);
    EXPECT_EQ(m2.mmio_read(MMIO_CONTROL_OFFSET), v);
}

TEST_F(EventLogTest, ExtendedFeaturesAreReadOnlyAndHonest)
{
    const uint64_t efr = m.mmio_read(MMIO_EXT_FEATURES);
    EXPECT_EQ(efr, ioguard_iommu_efr(m.iommu));
    EXPECT_TRUE(efr & FEATURE_IA);
    EXPECT_TRUE(efr & FEATURE_GA);
    EXPECT_TRUE(efr & FEATURE_PREFETCH);    // PREFETCH_IOMMU_PAGES
    EXPECT_FALSE(efr & (FEATURE_PPR | FEATURE_GT |
                        FEATURE_PC | FEATURE_HE | (1ULL << 63)));
    m.mmio_write(MMIO_EXT_FEATURES, 0);
    EXPECT_EQ(m.mmio_read(MMIO_EXT_FEATURES), efr);
    EXPECT_EQ(m.mmio_read(MMIO_EXT_FEATURES2), 0u);
}

TEST_F(EventLogTest, X2apicModeInterruptGoesThroughIntcapxt)
{
    Machine mxt(test_config(true, true, true, true, 64, false));
    Driver dxt{mxt};
    // As Linux's intcapxt_unmask_irq: destination 0x1234 (x2APIC), vector
    // 0x25, physical; then IntCapXTEn.
    mxt.mmio_write(MMIO_INTCAPXT_EVT_OFFSET,
                   0x34ULL << 8 | 0x12ULL << 16 | 0x25ULL << 32);
    dxt.enable(1ULL << CONTROL_XT_EN | 1ULL << CONTROL_INTCAPXT_EN |
               1ULL << CONTROL_GA_EN);
    EXPECT_TRUE(ioguard_iommu_efr(mxt.iommu) & FEATURE_X2APIC);
    dxt.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_TV);
    dxt.translate(kDev, 0x1000, IOGUARD_PERM_WRITE);
    EXPECT_EQ(mxt.interrupts, 0) << "not through the PCI function's MSI";
    ASSERT_EQ(mxt.messages.size(), 1u);
    EXPECT_EQ(mxt.messages[0].first, 0xfee34000ULL | 0x1200ULL << 32);
    EXPECT_EQ(mxt.messages[0].second, 0x25u);
}

TEST_F(EventLogTest, ResetClearsEverything)
{
    fault(0x1000);
    ioguard_iommu_reset(m.iommu);
    EXPECT_EQ(m.mmio_read(MMIO_CONTROL_OFFSET), 0u);
    EXPECT_EQ(m.mmio_read(MMIO_STATUS_OFFSET), 0u);
    EXPECT_EQ(m.mmio_read(MMIO_EVT_TAIL_OFFSET), 0u);
}

} // namespace
