// Interrupt remapping: both IRTE formats, IntCtl, pass bits and blocking.
#include <gtest/gtest.h>

#include "fake_guest.hh"

using namespace ioguard_test;

namespace {

constexpr uint16_t kDev = 0x0010;
constexpr uint64_t kIrt = 0x500000;

struct RemapTest : ::testing::Test {
    Machine m;
    Driver d{m};
    void SetUp() override { d.enable(); }

    // As Linux: IV=1, IntTabLen=9 (512 entries), IntCtl=10b.
    void attach_table(uint64_t q0 = 0)
    {
        d.set_dte(kDev, q0, 0, DTE_IRQ_IV | 9ULL << DTE_IRQ_TABLE_LEN_SHIFT |
                                   kIrt | 2ULL << DTE_IRQ_INTCTL_SHIFT);
    }
    bool remap(uint32_t data, IoguardMsi &out, uint64_t addr = 0xfee00000)
    {
        IoguardMsi in{addr, data};
        return ioguard_iommu_remap_msi(m.iommu, kDev, &in, &out);
    }
};

TEST_F(RemapTest, NoInterruptTableMeansUnmodified)
{
    d.set_dte(kDev, 0);
    IoguardMsi out;
    ASSERT_TRUE(remap(0x4031, out, 0xfee01000));
    EXPECT_EQ(out.address, 0xfee01000u);
    EXPECT_EQ(out.data, 0x4031u);
}

TEST_F(RemapTest, LegacyThirtyTwoBitEntry)
{
    Machine m32(test_config(true, false, false, true, 64, false));
    Driver d32{m32};
    d32.enable();
    d32.set_dte(kDev, 0, 0, DTE_IRQ_IV | 9ULL << DTE_IRQ_TABLE_LEN_SHIFT |
                                kIrt | 2ULL << DTE_IRQ_INTCTL_SHIFT);
    // Entry 5: remapped, fixed, physical, destination 3, vector 0x41.
    m32.w32(kIrt + 5 * 4, IRTE_REMAP_EN | 3u << 8 | 0x41u << 16);
    IoguardMsi in{0xfee00000, 5}, out;
    ASSERT_TRUE(ioguard_iommu_remap_msi(m32.iommu, kDev, &in, &out));
    EXPECT_EQ(out.address, 0xfee03000u);
    EXPECT_EQ(out.data, 0x41u);
}

TEST_F(RemapTest, OneHundredTwentyEightBitEntryWhenGaIsEnabled)
{
    Machine mga;
    Driver dga{mga};
    dga.enable(1ULL << CONTROL_GA_EN);
    dga.set_dte(kDev, 0, 0, DTE_IRQ_IV | 9ULL << DTE_IRQ_TABLE_LEN_SHIFT |
                                kIrt | 2ULL << DTE_IRQ_INTCTL_SHIFT);
    // Entry 7: logical mode, destination 0x02, vector 0xec.
    mga.w64(kIrt + 7 * 16, IRTE_REMAP_EN | IRTE_DM | 0x02ULL << 8);
    mga.w64(kIrt + 7 * 16 + 8, 0xec);
    IoguardMsi in{0xfee00000, 7}, out;
    ASSERT_TRUE(ioguard_iommu_remap_msi(mga.iommu, kDev, &in, &out));
    EXPECT_EQ(out.address, 0xfee02004u);
    EXPECT_EQ(out.data, 0xecu);
    IoguardStats s;
    ioguard_iommu_get_stats(mga.iommu, &s);
    EXPECT_EQ(s.interrupts_remapped, 1u);
}

TEST_F(RemapTest, IoapicLevelTriggerBitsSurvive)
{
    Machine m32(test_config(true, false, false, true, 64, false));
    Driver d32{m32};
    d32.enable();
    d32.set_dte(IOGUARD_IOAPIC_DEVID, 0, 0,
                DTE_IRQ_IV | 9ULL << DTE_IRQ_TABLE_LEN_SHIFT | kIrt |
                    2ULL << DTE_IRQ_INTCTL_SHIFT);
    m32.w32(kIrt + 9 * 4, IRTE_REMAP_EN | 0x31u << 16);
    IoguardMsi in{0xfee00000, 0xc000 | 9}, out;   // pin 9, level, asserted
    ASSERT_TRUE(ioguard_iommu_remap_msi(m32.iommu, IOGUARD_IOAPIC_DEVID, &in,
                                        &out));
    EXPECT_EQ(out.data, 0xc031u);
}

TEST_F(RemapTest, UnprogrammedEntryIsBlockedAndLogged)
{
    attach_table();
    // Linux's "allocated, not programmed" 128-bit marker: vector 0xff only.
    m.w64(kIrt + 3 * 16, 0);
    m.w64(kIrt + 3 * 16 + 8, 0xff);
    const uint64_t ctl = m.mmio_read(MMIO_CONTROL_OFFSET);
    m.mmio_write(MMIO_CONTROL_OFFSET, ctl | 1ULL << CONTROL_GA_EN);
    IoguardMsi out;
    EXPECT_FALSE(remap(3, out));
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_IO_FAULT));
    EXPECT_TRUE(ev[0].flags & EVENT_FLAG_I);
    EXPECT_EQ(ev[0].devid, kDev);
}

TEST_F(RemapTest, SupIopfSuppressesTheEvent)
{
    attach_table();
    const uint64_t ctl = m.mmio_read(MMIO_CONTROL_OFFSET);
    m.mmio_write(MMIO_CONTROL_OFFSET, ctl | 1ULL << CONTROL_GA_EN);
    m.w64(kIrt + 3 * 16, IRTE_SUP_IOPF);
    IoguardMsi out;
    EXPECT_FALSE(remap(3, out));
    EXPECT_TRUE(d.events().empty());
}

TEST_F(RemapTest, IndexBeyondTheTableIsBlocked)
{
    d.set_dte(kDev, 0, 0, DTE_IRQ_IV | 2ULL << DTE_IRQ_TABLE_LEN_SHIFT | kIrt |
                             2ULL << DTE_IRQ_INTCTL_SHIFT);
    IoguardMsi out;
    EXPECT_FALSE(remap(4, out));    // 4 entries: 0..3
    EXPECT_EQ(d.events().size(), 1u);
}

TEST_F(RemapTest, IntCtlAbortAndPass)
{
    d.set_dte(kDev, 0, 0, DTE_IRQ_IV | 9ULL << DTE_IRQ_TABLE_LEN_SHIFT | kIrt);
    IoguardMsi out;
    EXPECT_FALSE(remap(0x31, out)) << "IntCtl=00b aborts";
    d.set_dte(kDev, 0, 0, DTE_IRQ_IV | 9ULL << DTE_IRQ_TABLE_LEN_SHIFT | kIrt |
                             1ULL << DTE_IRQ_INTCTL_SHIFT);
    d.inv_dte(kDev);
    ASSERT_TRUE(d.completion_wait());
    ASSERT_TRUE(remap(0x31, out)) << "IntCtl=01b forwards";
    EXPECT_EQ(out.data, 0x31u);
}

TEST_F(RemapTest, NmiFollowsItsPassBit)
{
    attach_table();
    IoguardMsi out;
    EXPECT_FALSE(remap(4u << 8, out));
    d.set_dte(kDev, 0, 0, DTE_IRQ_IV | DTE_IRQ_NMIPASS | kIrt |
                             9ULL << DTE_IRQ_TABLE_LEN_SHIFT |
                             2ULL << DTE_IRQ_INTCTL_SHIFT);
    d.inv_dte(kDev);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_TRUE(remap(4u << 8, out));
}

TEST_F(RemapTest, TableOutsideRamIsAHardwareError)
{
    const uint64_t far = 0x5000000000ULL;
    d.set_dte(kDev, 0, 0, DTE_IRQ_IV | 9ULL << DTE_IRQ_TABLE_LEN_SHIFT | far |
                             2ULL << DTE_IRQ_INTCTL_SHIFT);
    IoguardMsi out;
    EXPECT_FALSE(remap(2, out));
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_PAGE_TAB_ERR));
    EXPECT_EQ(ev[0].address, far + 2 * 4);
}

TEST_F(RemapTest, ReservedInterruptFieldsAreIllegal)
{
    d.set_dte(kDev, 0, 0, DTE_IRQ_IV | 12ULL << DTE_IRQ_TABLE_LEN_SHIFT | kIrt |
                             2ULL << DTE_IRQ_INTCTL_SHIFT);
    IoguardMsi out;
    EXPECT_FALSE(remap(2, out));
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_ILL_DEV));
}

TEST_F(RemapTest, IntremapOffPassesEverything)
{
    Machine moff(test_config(false, true, false, true, 64, false));
    Driver doff{moff};
    doff.enable();
    doff.set_dte(kDev, 0, 0, DTE_IRQ_IV | kIrt);    // would abort
    IoguardMsi in{0xfee00000, 0x31}, out;
    EXPECT_TRUE(ioguard_iommu_remap_msi(moff.iommu, kDev, &in, &out));
    EXPECT_EQ(out.data, 0x31u);
}

} // namespace
