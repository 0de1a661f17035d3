// Statistics per requester and per IOMMU: what query-ioguard-stats reports.
#include <gtest/gtest.h>

#include <vector>

#include "../../hw/ioguard/core/statistics.hh"
#include "fake_guest.hh"

using namespace ioguard_test;

namespace {

constexpr uint16_t kNic = 0x0028;       // 00:05.0
constexpr uint16_t kDisk = 0x0120;      // 01:04.0
constexpr uint16_t kDomain = 3;

struct StatsTest : ::testing::Test {
    Machine m;
    Driver d{m};
    uint64_t root = 0;
    void SetUp() override
    {
        d.enable();
        root = d.alloc_table();
        d.set_dte(kNic, Driver::dte_translated(root, 3), kDomain);
        d.set_dte(kDisk, Driver::dte_translated(root, 3), kDomain);
        d.map(root, 3, 0x10000, 0xa000, true, true);
    }

    IoguardRequesterStats requester(uint16_t devid, bool *active = nullptr)
    {
        IoguardRequesterStats s;
        const bool a = ioguard_iommu_get_requester_stats(m.iommu, devid, &s);
        if (active) {
            *active = a;
        }
        return s;
    }

    std::vector<uint16_t> active_requesters()
    {
        std::vector<uint16_t> out;
        ioguard_iommu_for_each_requester(
            m.iommu,
            [](const IoguardRequesterStats *s, void *o) {
                static_cast<std::vector<uint16_t> *>(o)->push_back(s->devid);
            },
            &out);
        return out;
    }
};

TEST_F(StatsTest, CountedPerRequesterAndSummed)
{
    d.translate(kNic, 0x10000, IOGUARD_PERM_READ);      // miss, walk
    d.translate(kNic, 0x10008, IOGUARD_PERM_WRITE);     // hit
    d.translate(kNic, 0x50000, IOGUARD_PERM_READ);      // miss, fault
    d.translate(kDisk, 0x10000, IOGUARD_PERM_READ);     // hit (same domain)

    const IoguardRequesterStats nic = requester(kNic);
    EXPECT_EQ(nic.devid, kNic);
    EXPECT_EQ(nic.translations, 3u);
    EXPECT_EQ(nic.iotlb_hits, 1u);
    EXPECT_EQ(nic.iotlb_misses, 2u);
    EXPECT_EQ(nic.page_walks, 2u);
    // A 3-level walk, then one leaf read through the page directory cache.
    EXPECT_EQ(nic.page_walk_levels, 3u + 1u);
    EXPECT_EQ(nic.faults, 1u);
    EXPECT_EQ(nic.events_by_type[EVENT_TYPE_IO_FAULT], 1u);

    const IoguardRequesterStats disk = requester(kDisk);
    EXPECT_EQ(disk.translations, 1u);
    EXPECT_EQ(disk.iotlb_hits, 1u);
    EXPECT_EQ(disk.faults, 0u);
    EXPECT_EQ(disk.events_by_type[EVENT_TYPE_IO_FAULT], 0u);

    const IoguardStats all = d.stats();
    EXPECT_EQ(all.translations, 4u);
    EXPECT_EQ(all.iotlb_hits, 2u);
    EXPECT_EQ(all.faults, 1u);
    EXPECT_EQ(all.requesters, 2u);
    EXPECT_EQ(all.events_by_type[EVENT_TYPE_IO_FAULT], 1u);
    EXPECT_EQ(all.events_logged, 1u);
    EXPECT_EQ(active_requesters(), (std::vector<uint16_t>{kNic, kDisk}));
}

TEST_F(StatsTest, RefusedOnTheDeviceTableEntryIsATranslationToo)
{
    constexpr uint16_t kBlocked = 0x0030;
    d.set_dte(kBlocked, DTE_FLAG_V);            // IR=IW=0: Linux's "blocked"
    EXPECT_EQ(d.translate(kBlocked, 0x1000, IOGUARD_PERM_READ).perm, 0u);
    const IoguardRequesterStats s = requester(kBlocked);
    EXPECT_EQ(s.translations, 1u);
    EXPECT_EQ(s.faults, 1u);
    EXPECT_EQ(s.iotlb_hits + s.iotlb_misses + s.passthrough, 0u);
}

TEST_F(StatsTest, CommandsByOpcodeAndInvalidations)
{
    d.inv_dte(kNic);
    d.inv_pages(kDomain, 0x10000, false);
    ASSERT_TRUE(d.completion_wait());
    const IoguardStats s = d.stats();
    EXPECT_EQ(s.commands_by_opcode[CMD_INV_DEV_ENTRY], 1u);
    EXPECT_EQ(s.commands_by_opcode[CMD_INV_IOMMU_PAGES], 1u);
    EXPECT_EQ(s.commands_by_opcode[CMD_COMPL_WAIT], 1u);
    EXPECT_EQ(s.commands, 3u);
    EXPECT_EQ(s.invalidations, 2u);
}

TEST_F(StatsTest, ResetStartsOver)
{
    d.translate(kNic, 0x10000, IOGUARD_PERM_READ);
    ASSERT_TRUE(d.completion_wait());
    ioguard_iommu_reset_stats(m.iommu);
    bool active = true;
    const IoguardRequesterStats s = requester(kNic, &active);
    EXPECT_FALSE(active);
    EXPECT_EQ(s.translations, 0u);
    EXPECT_EQ(d.stats().commands, 0u);
    EXPECT_TRUE(active_requesters().empty());
    // The IOTLB is not statistics: the entry is still there.
    d.translate(kNic, 0x10000, IOGUARD_PERM_READ);
    EXPECT_EQ(requester(kNic).iotlb_hits, 1u);
}

TEST_F(StatsTest, UnknownRequesterIsInactive)
{
    bool active = true;
    const IoguardRequesterStats s = requester(0xfffe, &active);
    EXPECT_FALSE(active);
    EXPECT_EQ(s.devid, 0xfffe);
    EXPECT_EQ(s.translations, 0u);
}

TEST(StatsOff, NothingCountedPerRequester)
{
    Machine m(test_config(true, true, false, false, 64, false));
    Driver d{m};
    d.enable();
    const uint64_t root = d.alloc_table();
    d.set_dte(kNic, Driver::dte_translated(root, 3), kDomain);
    d.map(root, 3, 0x10000, 0xa000, true, true);
    EXPECT_EQ(d.translate(kNic, 0x10000, IOGUARD_PERM_READ).translated_addr,
              0xa000u);
    d.translate(kNic, 0x50000, IOGUARD_PERM_READ);
    const IoguardStats s = d.stats();
    EXPECT_EQ(s.translations, 0u);
    EXPECT_EQ(s.requesters, 0u);
    // Events are the control plane: still counted.
    EXPECT_EQ(s.events_logged, 1u);
    EXPECT_EQ(s.events_by_type[EVENT_TYPE_IO_FAULT], 1u);
}

// Every counter of the lists in iommu-engine.h is stored, read back under
// its own name, and cleared; one set alone makes the requester active.
TEST(CounterLists, EachCounterReadsBackAndClears)
{
    using ioguard::RequesterCounters;
    std::vector<std::pair<ioguard::Counter RequesterCounters::*,
                          uint64_t IoguardRequesterStats::*>> plain = {
#define IOGUARD_PAIR(name) {&RequesterCounters::name, &IoguardRequesterStats::name},
        IOGUARD_REQUESTER_COUNTERS(IOGUARD_PAIR)
#undef IOGUARD_PAIR
    };
    std::vector<std::pair<ioguard::Counter RequesterCounters::*,
                          uint64_t IoguardPrefetchStats::*>> prefetch = {
#define IOGUARD_PAIR(name) \
    {&RequesterCounters::prefetch_##name, &IoguardPrefetchStats::name},
        IOGUARD_PREFETCH_COUNTERS(IOGUARD_PAIR)
#undef IOGUARD_PAIR
    };
    std::vector<std::pair<ioguard::Counter RequesterCounters::*,
                          uint64_t IoguardModelStats::*>> model = {
#define IOGUARD_PAIR(name) \
    {&RequesterCounters::model_##name, &IoguardModelStats::name},
        IOGUARD_MODEL_COUNTERS(IOGUARD_PAIR)
#undef IOGUARD_PAIR
    };
    auto check = [](auto counter, auto read_back) {
        RequesterCounters c;
        IoguardRequesterStats out;
        EXPECT_FALSE(c.read(out));
        ioguard::bump(c.*counter, 7);
        EXPECT_TRUE(c.read(out));
        EXPECT_EQ(read_back(out), 7u);
        c.clear();
        EXPECT_FALSE(c.read(out));
        EXPECT_EQ(read_back(out), 0u);
    };
    for (auto [counter, field] : plain) {
        check(counter, [f = field](const IoguardRequesterStats &s) {
            return s.*f;
        });
    }
    for (auto [counter, field] : prefetch) {
        check(counter, [f = field](const IoguardRequesterStats &s) {
            return s.prefetch.*f;
        });
    }
    for (auto [counter, field] : model) {
        check(counter, [f = field](const IoguardRequesterStats &s) {
            return s.model.*f;
        });
    }
    EXPECT_EQ(plain.size() + prefetch.size() + model.size(), 21u);
}

} // namespace
