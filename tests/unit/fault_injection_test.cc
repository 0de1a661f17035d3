// Fault rules at the engine's sites: each action has its architected
// effect, and a rule that does not fire changes nothing.
#include <gtest/gtest.h>

#include <string>

#include "fault_rules.hh"

using namespace ioguard_test;

namespace
{

constexpr uint16_t kDev = 0x0208; // 02:01.0
constexpr uint16_t kDomain = 7;
constexpr uint64_t kIova = 0x40000;
constexpr uint64_t kPage = 0x90000;

IoguardConfig with_faults(IoguardFaults *f)
{
    IoguardConfig c = test_config();
    c.faults = f;
    return c;
}

struct FaultInjectionTest : ::testing::Test {
    FaultRules faults;
    Machine m{with_faults(faults.f)};
    Driver d{m};
    uint64_t root = 0;
    void SetUp() override
    {
        d.enable();
        root = d.alloc_table();
        d.set_dte(kDev, Driver::dte_translated(root, 3), kDomain);
        d.map(root, 3, kIova, kPage, true, true);
    }
    uint32_t add(const std::string &rule)
    {
        return faults.add(m.iommu, m.now, rule);
    }
    IoguardFaultRecord last_record()
    {
        EXPECT_FALSE(m.records_seen.empty());
        return m.records_seen.empty() ? IoguardFaultRecord{}
                                      : m.records_seen.back();
    }
    size_t fired()
    {
        return ioguard_faults_fired(faults.f, nullptr, 0, nullptr);
    }
};

TEST_F(FaultInjectionTest, TranslateFaultIsAnIoPageFault)
{
    add("site=translate,requester=02:01.0,range=0x40000-0x40fff,access=write,"
        "action=fault");
    // A read does not match; a write does.
    EXPECT_EQ(d.translate(kDev, kIova, IOGUARD_PERM_READ).translated_addr,
              kPage);
    EXPECT_EQ(d.translate(kDev, kIova + 8, IOGUARD_PERM_WRITE).perm,
              unsigned(IOGUARD_PERM_NONE));
    const auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_IO_FAULT));
    EXPECT_EQ(ev[0].devid, kDev);
    EXPECT_EQ(ev[0].domain, kDomain);
    EXPECT_EQ(ev[0].address, kIova + 8);
    EXPECT_EQ(ev[0].flags & EVENT_FLAG_RW, unsigned(EVENT_FLAG_RW));
    EXPECT_STREQ(ioguard_fault_reason_name(last_record().reason), "injected");
    IoguardFiredFault f;
    ASSERT_EQ(ioguard_faults_fired(faults.f, &f, 1, nullptr), 1u);
    EXPECT_EQ(f.site, unsigned(IOGUARD_FAULT_SITE_TRANSLATE));
    EXPECT_EQ(f.hit.requester, kDev);
    EXPECT_EQ(f.hit.address, kIova + 8);
    EXPECT_TRUE(f.hit.write);
    EXPECT_EQ(f.time_ns, m.now - 10000000); // d.translate() steps time
}

TEST_F(FaultInjectionTest, CorruptSendsTheAccessToTheNextPage)
{
    add("site=translate,when=once,action=corrupt");
    const IoguardTranslation t =
        d.translate(kDev, kIova + 4, IOGUARD_PERM_READ);
    EXPECT_EQ(t.translated_addr, kPage ^ 0x1000);
    EXPECT_EQ(t.addr_mask, 0xfffu);
    EXPECT_EQ(d.translate(kDev, kIova, IOGUARD_PERM_READ).translated_addr,
              kPage);
    EXPECT_TRUE(d.events().empty()); // silent, as corruption is
}

TEST_F(FaultInjectionTest, StaleServesATranslationTheGuestInvalidated)
{
    add("site=translate,when=nth:2,action=stale");
    ASSERT_EQ(d.translate(kDev, kIova, IOGUARD_PERM_READ).translated_addr,
              kPage);
    m.w64(d.pte_address(root, 3, kIova), 0); // unmap and flush
    d.inv_pages(kDomain, kIova, false);
    ASSERT_TRUE(d.completion_wait());
    const IoguardTranslation stale =
        d.translate(kDev, kIova, IOGUARD_PERM_READ);
    EXPECT_EQ(stale.translated_addr, kPage);
    EXPECT_EQ(stale.perm, unsigned(IOGUARD_PERM_RW));
    // The rule is spent: the truth again.
    EXPECT_EQ(d.translate(kDev, kIova, IOGUARD_PERM_READ).perm,
              unsigned(IOGUARD_PERM_NONE));
}

TEST_F(FaultInjectionTest, PageWalkFaultIsAPageTableHardwareError)
{
    add("site=page-walk,requester=02:01.0,action=fault");
    EXPECT_EQ(d.translate(kDev, kIova, IOGUARD_PERM_READ).perm,
              unsigned(IOGUARD_PERM_NONE));
    const auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_PAGE_TAB_ERR));
    EXPECT_EQ(ev[0].domain, kDomain);
    EXPECT_EQ(ev[0].address, root + ((kIova >> 30) & 0x1ff) * 8);
}

TEST_F(FaultInjectionTest, DteFetchFaultIsADeviceTableHardwareError)
{
    add("site=dte-fetch,requester=02:01.0,when=once,action=fault");
    EXPECT_EQ(d.translate(kDev, kIova, IOGUARD_PERM_WRITE).perm,
              unsigned(IOGUARD_PERM_NONE));
    EXPECT_EQ(d.translate(kDev, kIova, IOGUARD_PERM_WRITE).perm,
              unsigned(IOGUARD_PERM_RW));
    const auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_DEV_TAB_ERR));
    EXPECT_EQ(ev[0].devid, kDev);
    EXPECT_EQ(ev[0].address, kDevTable + kDev * 32u);
}

TEST_F(FaultInjectionTest, TranslationRulesSeeIdentityDma)
{
    d.set_dte(0x0300, 0); // V=0: untranslated
    EXPECT_TRUE(ioguard_iommu_dma_is_identity(m.iommu, 0x0300));
    const size_t changes = m.devtab_changes.size();
    const uint32_t id = add("site=translate,requester=03:00.0,action=fault");
    EXPECT_GT(m.devtab_changes.size(), changes);
    EXPECT_FALSE(ioguard_iommu_dma_is_identity(m.iommu, 0x0300));
    ioguard_faults_remove(faults.f, id);
    ioguard_iommu_faults_changed(m.iommu);
    EXPECT_TRUE(ioguard_iommu_dma_is_identity(m.iommu, 0x0300));
}

TEST_F(FaultInjectionTest, CommandFaultIsAnIllegalCommandThatStopsTheBuffer)
{
    add("site=command,opcode=invalidate-iommu-pages,when=once,action=fault");
    d.inv_pages(kDomain, kIova, false);
    EXPECT_EQ(m.mmio_read(MMIO_CMD_HEAD_OFFSET), 0u);
    EXPECT_FALSE(m.mmio_read(MMIO_STATUS_OFFSET) & MMIO_STATUS_CMDBUF_RUN_MASK);
    const auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_ILL_CMD));
    EXPECT_EQ(ev[0].address, kCmdBuf);
}

TEST_F(FaultInjectionTest, StuckCommandBufferMovesOnWhenTheRuleGoes)
{
    const uint32_t id = add("site=command,opcode=completion-wait,action=stuck");
    EXPECT_FALSE(d.completion_wait());
    EXPECT_EQ(m.mmio_read(MMIO_CMD_HEAD_OFFSET), 0u);
    EXPECT_TRUE(m.mmio_read(MMIO_STATUS_OFFSET) & MMIO_STATUS_CMDBUF_RUN_MASK);
    EXPECT_FALSE(d.completion_wait());
    ASSERT_TRUE(ioguard_faults_remove(faults.f, id));
    ioguard_iommu_faults_changed(m.iommu);
    EXPECT_EQ(m.r64(kSemaphore), d.sem_value);
    EXPECT_EQ(m.mmio_read(MMIO_CMD_HEAD_OFFSET), 32u);
}

TEST_F(FaultInjectionTest, DroppedCompletionWaitNeverStoresNorInterrupts)
{
    add("site=completion-wait,when=once,action=drop");
    const uint64_t ctl = m.mmio_read(MMIO_CONTROL_OFFSET);
    m.mmio_write(MMIO_CONTROL_OFFSET, ctl | 1ULL << CONTROL_COMWAIT_EN);
    d.queue(uint32_t(kSemaphore) | CMD_COMPL_WAIT_STORE_MASK |
                CMD_COMPL_WAIT_INT_MASK,
            uint32_t(CMD_COMPL_WAIT) << 28, 0x1234);
    EXPECT_EQ(m.r64(kSemaphore), 0u);
    EXPECT_EQ(m.interrupts, 0);
    EXPECT_EQ(m.mmio_read(MMIO_CMD_HEAD_OFFSET), 16u); // consumed
    EXPECT_TRUE(d.completion_wait());
}

TEST_F(FaultInjectionTest, DelayedCompletionWaitCompletesLater)
{
    add("site=completion-wait,when=once,action=delay:2ms");
    m.now = 5000000;
    EXPECT_FALSE(d.completion_wait());
    EXPECT_EQ(m.wake_deadline, 7000000u);
    m.now = 6999999;
    ioguard_iommu_run_timers(m.iommu);
    EXPECT_NE(m.r64(kSemaphore), d.sem_value);
    m.now = 7000000;
    ioguard_iommu_run_timers(m.iommu);
    EXPECT_EQ(m.r64(kSemaphore), d.sem_value);
}

// The notifier site: the IOMMU's IOTLB drops the range, the guest's
// COMPLETION_WAIT completes, and the host's notifier users are never told.
TEST_F(FaultInjectionTest, NotifierDropLeavesTheHostUntold)
{
    add("site=notifier,range=0x40000-0x40fff,when=once,action=drop");
    m.pages_invalidated.clear();
    d.inv_pages(kDomain, 0x40000, false);
    EXPECT_TRUE(d.completion_wait());
    EXPECT_TRUE(m.pages_invalidated.empty());
    EXPECT_EQ(fired(), 1u);
    d.inv_pages(kDomain, 0x40000, false);
    EXPECT_TRUE(d.completion_wait());
    EXPECT_EQ(m.pages_invalidated,
              (std::vector<Machine::PagesInvalidated>{
                  {kDomain, 0x40000, 0x40fff}}));
}

// Late: told at the due time, after the completion; a second rule's
// shorter delay is told first.
TEST_F(FaultInjectionTest, DelayedHostInvalidationsAreToldWhenDue)
{
    add("site=device-iotlb,requester=02:01.0,when=once,action=delay:2ms");
    add("site=notifier,when=once,action=delay:1ms");
    m.now = 5000000;
    m.pages_invalidated.clear();
    d.queue(kDev, uint32_t(CMD_INV_IOTLB_PAGES) << 28 | kDev, 0x40000, 0);
    d.inv_pages(kDomain, 0x40000, false);
    EXPECT_TRUE(d.completion_wait());
    EXPECT_TRUE(m.device_iotlb_invalidations.empty());
    EXPECT_TRUE(m.pages_invalidated.empty());
    EXPECT_EQ(m.wake_deadline, 6000000u);
    m.now = 6000000;
    ioguard_iommu_run_timers(m.iommu);
    EXPECT_EQ(m.pages_invalidated.size(), 1u);
    EXPECT_TRUE(m.device_iotlb_invalidations.empty());
    EXPECT_EQ(m.wake_deadline, 7000000u);
    m.now = 7000000;
    ioguard_iommu_run_timers(m.iommu);
    EXPECT_EQ(m.device_iotlb_invalidations,
              (std::vector<Machine::DeviceIotlbInvalidated>{
                  {kDev, 0x40000, 0x40fff}}));
}

TEST_F(FaultInjectionTest, EventLogDropLosesTheEventAndSaysSo)
{
    add("site=event-log,when=once,action=drop");
    d.translate(kDev, 0x80000, IOGUARD_PERM_READ); // not mapped
    EXPECT_TRUE(d.events().empty());
    EXPECT_EQ(last_record().delivery, unsigned(IOGUARD_DELIVERY_INJECTED));
    EXPECT_EQ(last_record().reason, unsigned(IOGUARD_FAULT_NOT_PRESENT));
    d.translate(kDev, 0x81000, IOGUARD_PERM_READ);
    EXPECT_EQ(d.events().size(), 1u);
}

TEST_F(FaultInjectionTest, EventLogOverflowStopsTheLogAsAFullOneWould)
{
    add("site=event-log,when=once,action=overflow");
    d.translate(kDev, 0x80000, IOGUARD_PERM_READ);
    const uint64_t st = m.mmio_read(MMIO_STATUS_OFFSET);
    EXPECT_TRUE(st & MMIO_STATUS_EVT_OVERFLOW_MASK);
    EXPECT_FALSE(st & MMIO_STATUS_EVT_RUN_MASK);
    EXPECT_EQ(m.interrupts, 1);
    EXPECT_TRUE(d.events().empty());
}

TEST_F(FaultInjectionTest, InterruptDropLosesTheMessage)
{
    add("site=interrupt,requester=02:01.0,when=once,action=drop");
    IoguardMsi in{0xfee00000, 0x4041}, out;
    EXPECT_FALSE(ioguard_iommu_remap_msi(m.iommu, kDev, &in, &out));
    EXPECT_TRUE(ioguard_iommu_remap_msi(m.iommu, kDev, &in, &out));
    EXPECT_EQ(out.data, 0x4041u);
    EXPECT_TRUE(d.events().empty());
}

TEST_F(FaultInjectionTest, RulesForAnotherDeviceAreRefused)
{
    char error[256];
    EXPECT_EQ(ioguard_faults_add(faults.f, "site=nic-dma,action=dma-error", 0,
                                 1u << IOGUARD_FAULT_SITE_TRANSLATE, error,
                                 sizeof(error)),
              0u);
    EXPECT_STREQ(error,
                 "site=nic-dma is not on this device (it has translate)");
    EXPECT_EQ(ioguard_faults_add(faults.f, "site=translate,action=drop", 0, ~0u,
                                 error, sizeof(error)),
              0u);
    EXPECT_EQ(fired(), 0u);
}

TEST_F(FaultInjectionTest, NoRuleNoChange)
{
    add("site=translate,requester=00:01.0,action=fault");
    EXPECT_EQ(d.translate(kDev, kIova, IOGUARD_PERM_WRITE).translated_addr,
              kPage);
    EXPECT_TRUE(d.completion_wait());
    EXPECT_EQ(fired(), 0u);
    IoguardFaultRuleEntry info;
    ASSERT_EQ(ioguard_faults_rules(faults.f, &info, 1), 1u);
    EXPECT_STREQ(info.text, "site=translate,requester=00:01.0,action=fault");
    EXPECT_EQ(info.matches, 0u);
}

} // namespace
