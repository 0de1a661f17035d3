// The command buffer: completion wait, illegal commands, bad addresses.
#include <gtest/gtest.h>

#include "fake_guest.hh"

using namespace ioguard_test;

namespace {

struct CommandTest : ::testing::Test {
    Machine m;
    Driver d{m};
    void SetUp() override { d.enable(); }
};

TEST_F(CommandTest, CompletionWaitStoresTheFullQuadword)
{
    d.sem_value = 0x1234567800000000ULL;
    ASSERT_TRUE(d.completion_wait());
    EXPECT_EQ(m.r64(kSemaphore), 0x1234567800000001ULL);
    EXPECT_EQ(m.mmio_read(MMIO_CMD_HEAD_OFFSET, 4), d.cmd_tail);
}

TEST_F(CommandTest, CompletionWaitInterruptSetsStatus)
{
    d.queue(CMD_COMPL_WAIT_INT_MASK, uint32_t(CMD_COMPL_WAIT) << 28);
    EXPECT_TRUE(m.mmio_read(MMIO_STATUS_OFFSET, 4) &
                MMIO_STATUS_COM_WAIT_INT_MASK);
    EXPECT_EQ(m.interrupts, 0) << "ComWaitIntEn is clear";
    m.mmio_write(MMIO_STATUS_OFFSET, MMIO_STATUS_COM_WAIT_INT_MASK, 4);
    EXPECT_FALSE(m.mmio_read(MMIO_STATUS_OFFSET, 4) &
                 MMIO_STATUS_COM_WAIT_INT_MASK);
}

TEST_F(CommandTest, NoCommandRunsWhileTheIommuIsOff)
{
    Machine m2;
    Driver d2{m2};
    m2.mmio_write(MMIO_CMD_BUF_OFFSET, kCmdBuf | (9ULL << 56));
    m2.mmio_write(MMIO_CONTROL_OFFSET, 1ULL << CONTROL_CMDBUF_EN);
    EXPECT_FALSE(d2.completion_wait());
    // Switching it on runs what is queued.
    m2.mmio_write(MMIO_CONTROL_OFFSET,
                  1ULL << CONTROL_CMDBUF_EN | 1ULL << CONTROL_IOMMU_EN);
    EXPECT_EQ(m2.r64(kSemaphore), 1u);
}

TEST_F(CommandTest, IllegalOpcodeLogsItsAddressAndStopsTheBuffer)
{
    d.queue(0, 0xfu << 28);
    const uint64_t bad = kCmdBuf;
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_ILL_CMD));
    EXPECT_EQ(ev[0].address, bad);
    EXPECT_FALSE(m.mmio_read(MMIO_STATUS_OFFSET, 4) &
                 MMIO_STATUS_CMDBUF_RUN_MASK);
    EXPECT_EQ(m.mmio_read(MMIO_CMD_HEAD_OFFSET, 4), 0u);
    EXPECT_FALSE(d.completion_wait()) << "stopped until restarted";

    // The driver's recovery: fix the command, toggle CmdBufEn.
    m.w32(bad + 4, uint32_t(CMD_INV_ALL) << 28);
    const uint64_t ctl = m.mmio_read(MMIO_CONTROL_OFFSET);
    m.mmio_write(MMIO_CONTROL_OFFSET, ctl & ~(1ULL << CONTROL_CMDBUF_EN));
    m.mmio_write(MMIO_CONTROL_OFFSET, ctl);
    EXPECT_EQ(m.r64(kSemaphore), d.sem_value);
}

TEST_F(CommandTest, PprIsIllegalWithoutItsFeature)
{
    d.queue(0, uint32_t(CMD_COMPLETE_PPR) << 28);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_ILL_CMD));
}

TEST_F(CommandTest, CommandBufferOutsideRam)
{
    const uint64_t far = 0x3000000000ULL;
    m.mmio_write(MMIO_CMD_BUF_OFFSET, far | (8ULL << 56));
    m.mmio_write(MMIO_CMD_TAIL_OFFSET, 0x10, 4);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_CMD_HARD_ERR));
    EXPECT_EQ(ev[0].address, far);
    EXPECT_FALSE(m.guest_errors.empty());
}

TEST_F(CommandTest, CompletionWaitStoreOutsideRam)
{
    const uint64_t far = 0x3000000000ULL;
    d.queue(uint32_t(far) | 1, uint32_t(CMD_COMPL_WAIT) << 28 | uint32_t(far >> 32),
            1, 0);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_CMD_HARD_ERR));
    EXPECT_EQ(ev[0].address, far);
}

TEST_F(CommandTest, HeadWrapsAroundTheRing)
{
    for (int i = 0; i < 600; i++) {    // more than the 512-entry ring
        ASSERT_TRUE(d.completion_wait()) << i;
    }
    EXPECT_EQ(m.mmio_read(MMIO_CMD_HEAD_OFFSET, 4), (600 * 16) % (512 * 16));
}

TEST_F(CommandTest, TailBeyondTheRingIsMasked)
{
    m.mmio_write(MMIO_CMD_TAIL_OFFSET, 0xffffffff, 4);
    EXPECT_LT(m.mmio_read(MMIO_CMD_TAIL_OFFSET, 4), 512u * 16);
    EXPECT_EQ(m.mmio_read(MMIO_CMD_TAIL_OFFSET, 4) & 0xf, 0u);
}

TEST_F(CommandTest, InvalidateInterruptTableReachesTheHost)
{
    d.queue(0x00a0, uint32_t(CMD_INV_IRT) << 28);
    ASSERT_TRUE(d.completion_wait());
    ASSERT_EQ(m.irt_invalidations.size(), 1u);
    EXPECT_EQ(m.irt_invalidations[0], 0xa0);
}

} // namespace
