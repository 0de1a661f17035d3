// Snapshots: an engine and an injector restored from saved state go on
// exactly as the saved ones would, and a malformed state is refused
// without changing anything.
#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include "../saved_state.hh"
#include "fake_guest.hh"
#include "hw/ioguard/fault-inject.h"

using namespace ioguard_test;

namespace {

constexpr uint16_t kDev = 0x0028;
constexpr uint16_t kDomain = 3;

uint32_t add(IoguardFaults *f, const char *rule)
{
    char error[256];
    const uint32_t id = ioguard_faults_add(f, rule, 0, ~0u, error,
                                           sizeof(error));
    EXPECT_NE(id, 0u) << error;
    return id;
}

// Registers a guest can read back, in the order of amd-vi-regs.h.
const uint64_t kRegisters[] = {
    MMIO_DEV_TABLE_OFFSET, MMIO_CMD_BUF_OFFSET,  MMIO_EVT_BUF_OFFSET,
    MMIO_CONTROL_OFFSET,   MMIO_CMD_HEAD_OFFSET, MMIO_CMD_TAIL_OFFSET,
    MMIO_EVT_HEAD_OFFSET,  MMIO_EVT_TAIL_OFFSET, MMIO_STATUS_OFFSET,
    IOGUARD_MMIO_CONTROL,
};

struct Engine {
    IoguardFaults *faults = ioguard_faults_new(5);
    Machine m;
    Driver d{m};
    Engine() : m(config(faults)) {}
    ~Engine() { ioguard_faults_free(faults); }
    static IoguardConfig config(IoguardFaults *f)
    {
        IoguardConfig c = test_config();
        c.faults = f;
        return c;
    }
};

TEST(Snapshot, RestoredEngineGoesOnWhereTheSavedOneWas)
{
    Engine a;
    a.d.enable();
    const uint64_t root = a.d.alloc_table();
    a.d.set_dte(kDev, Driver::dte_translated(root, 3), kDomain);
    a.d.map(root, 3, 0x7000, 0x9000, true, true);
    a.m.mmio_write(IOGUARD_MMIO_CONTROL, IOGUARD_CONTROL_STREAMING_EN);
    a.d.translate(kDev, 0x20000, IOGUARD_PERM_WRITE);  // an event
    IoguardStreamingRule rule{kDev, 0x1000, 0x1fff};
    ASSERT_TRUE(ioguard_iommu_add_streaming_rule(a.m.iommu, &rule));
    // A completion delayed past the snapshot, and a stuck command after it.
    add(a.faults, "site=completion-wait,when=once,action=delay:1ms");
    add(a.faults, "site=command,opcode=invalidate-iommu-all,action=stuck");
    a.m.now = 1000;
    EXPECT_FALSE(a.d.completion_wait());
    a.d.queue(0, uint32_t(CMD_INV_ALL) << 28);

    // The machine's RAM goes with it, as QEMU's does.
    Engine b;
    b.m.ram = a.m.ram;
    b.m.now = a.m.now;
    const std::vector<uint8_t> state = save(a.m.iommu);
    ASSERT_TRUE(ioguard_iommu_load_state(b.m.iommu, state.data(),
                                         state.size()));
    const std::vector<uint8_t> faults = save(a.faults);
    ASSERT_TRUE(ioguard_faults_load(b.faults, faults.data(), faults.size()));
    for (uint64_t reg : kRegisters) {
        EXPECT_EQ(b.m.mmio_read(reg), a.m.mmio_read(reg)) << std::hex << reg;
    }
    EXPECT_EQ(b.m.wake_deadline, 1001000u);
    EXPECT_FALSE(b.m.devtab_changes.empty());
    IoguardStreamingRule rules[2];
    ASSERT_EQ(ioguard_iommu_streaming_rules(b.m.iommu, rules, 2), 1u);
    EXPECT_EQ(rules[0].first, 0x1000u);

    // The delayed completion completes; removing the rule frees the buffer.
    b.m.now = 1001000;
    ioguard_iommu_run_timers(b.m.iommu);
    EXPECT_EQ(b.m.r64(kSemaphore), a.d.sem_value);
    ASSERT_TRUE(ioguard_faults_remove(b.faults, 2));
    ioguard_iommu_faults_changed(b.m.iommu);
    EXPECT_EQ(b.m.mmio_read(MMIO_CMD_HEAD_OFFSET), b.m.mmio_read(
                                                       MMIO_CMD_TAIL_OFFSET));
    // Translation from the guest's tables, the caches refilled.
    Driver db{b.m};
    db.evt_head = a.d.evt_head;
    const IoguardTranslation t = db.translate(kDev, 0x7010, IOGUARD_PERM_READ);
    EXPECT_EQ(t.translated_addr, 0x9000u);
    EXPECT_EQ(db.stats().page_walks, 1u);
    EXPECT_EQ(db.events().size(), 1u);      // the event before the snapshot
}

TEST(Snapshot, MalformedStateIsRefusedAndChangesNothing)
{
    Engine a, b;
    a.d.enable();
    b.m.mmio_write(MMIO_DEV_TABLE_OFFSET, 0x123000);
    const std::vector<uint8_t> state = save(a.m.iommu);
    for (size_t len = 0; len < state.size(); len++) {
        EXPECT_FALSE(ioguard_iommu_load_state(b.m.iommu, state.data(), len))
            << len;
    }
    std::vector<uint8_t> longer = state;
    longer.resize(state.size() + 8);
    EXPECT_FALSE(ioguard_iommu_load_state(b.m.iommu, longer.data(),
                                          longer.size()));
    std::vector<uint8_t> bad_version = state;
    bad_version[0] ^= 0xff;
    EXPECT_FALSE(ioguard_iommu_load_state(b.m.iommu, bad_version.data(),
                                          bad_version.size()));
    EXPECT_EQ(b.m.mmio_read(MMIO_DEV_TABLE_OFFSET), 0x123000u);

    add(a.faults, "site=translate,action=fault");
    const std::vector<uint8_t> faults = save(a.faults);
    for (size_t len = 0; len < faults.size(); len++) {
        EXPECT_FALSE(ioguard_faults_load(b.faults, faults.data(), len));
    }
    IoguardFaults *other_seed = ioguard_faults_new(6);
    EXPECT_FALSE(ioguard_faults_load(other_seed, faults.data(),
                                     faults.size()));
    ioguard_faults_free(other_seed);
    EXPECT_EQ(ioguard_faults_rules(b.faults, nullptr, 0), 0u);
}

TEST(Snapshot, RestoredInjectorDecidesAsTheSavedOneWould)
{
    IoguardFaults *a = ioguard_faults_new(11);
    add(a, "site=nic-dma,when=prob:0.3,action=dma-error");
    add(a, "site=nic-dma,when=nth:40,action=dma-error");
    const IoguardFaultHit hit{0x28, 0x1000, true, -1};
    for (int i = 0; i < 25; i++) {
        ioguard_faults_check(a, IOGUARD_FAULT_SITE_NIC_DMA, &hit, i, nullptr);
    }
    const std::vector<uint8_t> state = save(a);
    IoguardFaults *b = ioguard_faults_new(11);
    ASSERT_TRUE(ioguard_faults_load(b, state.data(), state.size()));
    for (int i = 25; i < 100; i++) {
        IoguardFiredFault fa{}, fb{};
        const bool ra = ioguard_faults_check(a, IOGUARD_FAULT_SITE_NIC_DMA,
                                             &hit, i, &fa);
        const bool rb = ioguard_faults_check(b, IOGUARD_FAULT_SITE_NIC_DMA,
                                             &hit, i, &fb);
        ASSERT_EQ(ra, rb) << i;
        EXPECT_EQ(fa.seq, fb.seq);
        EXPECT_EQ(fa.rule, fb.rule);
    }
    IoguardFiredFault fired_a[256], fired_b[256];
    const size_t na = ioguard_faults_fired(a, fired_a, 256, nullptr);
    ASSERT_EQ(ioguard_faults_fired(b, fired_b, 256, nullptr), na);
    ASSERT_GT(na, 10u);
    EXPECT_EQ(fired_b[0].time_ns, fired_a[0].time_ns);
    ioguard_faults_free(a);
    ioguard_faults_free(b);
}

} // namespace
