// STREAMING mappings: the prefetcher, the guest's opt-in and the host's
// policy, PREFETCH_IOMMU_PAGES, the prefetch statistics and the latency
// model.
#include <gtest/gtest.h>

#include <string>

#include "fake_guest.hh"

using namespace ioguard_test;

namespace {

constexpr uint16_t kDev = 0x0028;       // 00:05.0
constexpr uint16_t kOther = 0x0100;     // 01:00.0
constexpr uint16_t kDomain = 3;
constexpr unsigned kDepth = 8;
constexpr uint64_t kPage = 4096;
constexpr uint64_t kBase = 0x100000;    // IOVA of the buffer
constexpr uint64_t kPa = 0x800000;      // where it is in guest memory

IoguardConfig streaming_config(unsigned depth = kDepth)
{
    IoguardConfig c = test_config();
    c.prefetch_depth = depth;
    c.latency_model = true;
    c.round_trip_ns = 1000;
    c.walk_read_ns = 100;
    return c;
}

struct StreamingTest : ::testing::Test {
    Machine m{streaming_config()};
    Driver d{m};
    uint64_t root = 0;

    void SetUp() override
    {
        d.enable();
        root = d.alloc_table();
        d.set_dte(kDev, Driver::dte_translated(root, 3), kDomain);
        d.set_dte(kOther, Driver::dte_translated(root, 3), kDomain + 1);
    }

    // pages 4 KiB pages from iova, with the STREAMING bit if streaming.
    void map(uint64_t iova, unsigned pages, bool streaming = true)
    {
        for (unsigned i = 0; i < pages; i++) {
            const uint64_t at = iova + i * kPage;
            d.map(root, 3, at, kPa + (at - kBase), true, true);
            if (streaming) {
                const uint64_t pte = d.pte_address(root, 3, at);
                m.w64(pte, m.r64(pte) | IOGUARD_PTE_STREAMING);
            }
        }
    }
    void guest_opt_in(bool on = true)
    {
        m.mmio_write(IOGUARD_MMIO_CONTROL,
                     on ? IOGUARD_CONTROL_STREAMING_EN : 0);
    }
    // A device reading pages pages from iova, one translation per page.
    void read(uint16_t devid, uint64_t iova, unsigned pages, int step = 1)
    {
        for (unsigned i = 0; i < pages; i++) {
            const uint64_t at = iova + int64_t(i) * step * int64_t(kPage);
            const IoguardTranslation t = d.translate(devid, at,
                                                     IOGUARD_PERM_READ);
            ASSERT_EQ(t.perm, unsigned(IOGUARD_PERM_RW)) << std::hex << at;
            ASSERT_EQ(t.translated_addr, kPa + (at - kBase)) << std::hex << at;
        }
    }
    IoguardRequesterStats requester(uint16_t devid = kDev)
    {
        IoguardRequesterStats s;
        ioguard_iommu_get_requester_stats(m.iommu, devid, &s);
        return s;
    }
    void prefetch_command(uint16_t devid, uint64_t address, unsigned count,
                          uint32_t dw2_flags = 0, uint32_t dw1_extra = 0)
    {
        d.queue(devid | count << CMD_PREFETCH_PFCOUNT_SHIFT,
                uint32_t(CMD_PREFETCH_IOMMU_PAGES) << 28 | dw1_extra,
                uint32_t(address) | dw2_flags, uint32_t(address >> 32));
    }
};

TEST_F(StreamingTest, IoguardRegistersAreDiscoverable)
{
    EXPECT_EQ(m.mmio_read(IOGUARD_MMIO_ID), IOGUARD_ID_VALUE);
    EXPECT_EQ(m.mmio_read(IOGUARD_MMIO_FEATURES), IOGUARD_FEATURE_STREAMING);
    EXPECT_EQ(m.mmio_read(IOGUARD_MMIO_CONTROL), 0u);
    guest_opt_in();
    EXPECT_EQ(m.mmio_read(IOGUARD_MMIO_CONTROL), IOGUARD_CONTROL_STREAMING_EN);
    EXPECT_TRUE(ioguard_iommu_guest_streaming_enabled(m.iommu));
    m.mmio_write(IOGUARD_MMIO_CONTROL, ~0ULL);  // undefined bits stay 0
    EXPECT_EQ(m.mmio_read(IOGUARD_MMIO_CONTROL), IOGUARD_CONTROL_STREAMING_EN);
    m.mmio_write(IOGUARD_MMIO_ID, 0);           // read-only
    EXPECT_EQ(m.mmio_read(IOGUARD_MMIO_ID), IOGUARD_ID_VALUE);
    ioguard_iommu_reset(m.iommu);
    EXPECT_EQ(m.mmio_read(IOGUARD_MMIO_CONTROL), 0u);
}

TEST_F(StreamingTest, ByDefaultNothingIsPrefetched)
{
    map(kBase, 64);                 // the PTE bit alone does nothing
    read(kDev, kBase, 64);
    const auto s = requester();
    EXPECT_EQ(s.prefetch.issued, 0u);
    EXPECT_EQ(s.prefetch.walks, 0u);
    EXPECT_EQ(s.iotlb_misses, 64u);
}

TEST_F(StreamingTest, GuestOptInPrefetchesDepthPagesAhead)
{
    map(kBase, 64);
    guest_opt_in();
    read(kDev, kBase, 1);           // a stream starts: no prefetch yet
    EXPECT_EQ(requester().prefetch.issued, 0u);
    read(kDev, kBase + kPage, 1);   // it steps to the next page
    auto s = requester();
    EXPECT_EQ(s.iotlb_misses, 2u);
    EXPECT_EQ(s.prefetch.issued, kDepth);       // pages 2..9
    EXPECT_EQ(s.prefetch.walks, 1u);
    EXPECT_EQ(s.prefetch.walk_levels, kDepth);  // one entry per page

    read(kDev, kBase + 2 * kPage, 62);
    s = requester();
    // Only the first two pages waited for a walk: 97% of walks avoided.
    EXPECT_EQ(s.iotlb_misses, 2u);
    EXPECT_EQ(s.iotlb_hits, 62u);
    EXPECT_EQ(s.prefetch.used, 62u);
    // Refills of half a window; the stream stops at the end of the
    // mapping, so everything prefetched was used.
    EXPECT_EQ(s.prefetch.issued, 62u);
    EXPECT_LE(s.prefetch.walks, 1 + 62u / (kDepth / 2) + 1);
}

TEST_F(StreamingTest, StreamsOfLargePages)
{
    // Eight 2 MiB pages: each translation covers one, and the next page
    // starts where it ends.
    constexpr uint64_t k2M = 2 << 20, kIova = 0x40000000;
    for (uint64_t i = 0; i < 8; i++) {
        d.map(root, 3, kIova + i * k2M, 0, true, true, 2);
    }
    const IoguardStreamingRule rule{kDev, 0, ~uint64_t{0}};
    ASSERT_TRUE(ioguard_iommu_add_streaming_rule(m.iommu, &rule));
    for (uint64_t i = 0; i < 8; i++) {
        ASSERT_EQ(d.translate(kDev, kIova + i * k2M + 0x1234,
                              IOGUARD_PERM_READ).addr_mask, k2M - 1);
    }
    const auto s = requester();
    EXPECT_EQ(s.iotlb_misses, 2u);
    EXPECT_EQ(s.prefetch.used, 6u);
}

TEST_F(StreamingTest, RandomDmaCostsNoPrefetchWalks)
{
    map(kBase, 64);
    guest_opt_in();
    for (unsigned i : {7u, 30u, 2u, 51u, 18u, 40u, 9u, 60u}) {
        read(kDev, kBase + i * kPage, 1);
    }
    EXPECT_EQ(requester().prefetch.walks, 0u);
}

TEST_F(StreamingTest, GuestBitWithoutControlBitAndControlBitWithoutPteBit)
{
    map(kBase, 16, false);
    guest_opt_in();
    read(kDev, kBase, 16);
    EXPECT_EQ(requester().prefetch.issued, 0u);
}

TEST_F(StreamingTest, PrefetchFollowsADescendingStream)
{
    map(kBase, 64);
    guest_opt_in();
    const uint64_t top = kBase + 63 * kPage;
    read(kDev, top, 2, -1);         // 63, 62: direction down
    const auto before = requester();
    read(kDev, top - 2 * kPage, 30, -1);
    const auto s = requester();
    EXPECT_EQ(s.iotlb_misses, before.iotlb_misses);
    EXPECT_EQ(s.prefetch.used - before.prefetch.used, 30u);
}

TEST_F(StreamingTest, StopsAtANotPresentPageAndNeverCachesIt)
{
    map(kBase, 5);                  // pages 0..4; page 5 is not mapped
    guest_opt_in();
    read(kDev, kBase, 2);
    EXPECT_EQ(requester().prefetch.issued, 3u);
    read(kDev, kBase + 2 * kPage, 3);
    EXPECT_EQ(requester().iotlb_misses, 2u);
    EXPECT_TRUE(d.events().empty());        // a prefetch is silent

    // The demand access to page 5 faults; mapped later (no invalidation,
    // as Linux does), it translates.
    EXPECT_EQ(d.translate(kDev, kBase + 5 * kPage, IOGUARD_PERM_READ).perm,
              0u);
    EXPECT_EQ(d.events().size(), 1u);
    map(kBase + 5 * kPage, 1);
    read(kDev, kBase + 5 * kPage, 1);
}

TEST_F(StreamingTest, StreamsEndingAtTheSameDeadEndWalkThereOnce)
{
    // Two short buffers read again and again, with other DMA in between:
    // each time a new stream, each ending at an unmapped page.
    map(kBase, 2);
    map(kBase + 30 * kPage, 2);
    guest_opt_in();
    for (int round = 0; round < 10; round++) {
        read(kDev, kBase, 2);
        read(kDev, kBase + 30 * kPage, 2);
        for (unsigned other : {10u, 50u, 70u, 90u}) {   // evict the streams
            map(kBase + other * kPage, 1);
            read(kDev, kBase + other * kPage, 1);
        }
    }
    // The first stream's dead end is walked once. It found nothing at all,
    // so the next streams start backing off (see BacksOff below) and the
    // second buffer's dead end is not walked before it is remembered.
    EXPECT_LE(requester().prefetch.walks, 2u);
    const uint64_t walks = requester().prefetch.walks;
    // Mapped later, the dead end is walked again once a DMA reached it, and
    // the pages ahead are prefetched (from page 4: the back-off skipped the
    // try at page 2).
    map(kBase + 2 * kPage, 8);
    read(kDev, kBase, 4);
    EXPECT_EQ(requester().prefetch.walks, walks + 1);
    EXPECT_EQ(requester().prefetch.issued, 6u);
}

TEST_F(StreamingTest, TwoQueuesOnNeighbouringPagesAreNotAStream)
{
    // A submission queue and a completion queue in neighbouring pages,
    // used in turn (as NVMe does): the requester goes back and forth, which
    // is no direction to prefetch in.
    map(kBase, 16);
    guest_opt_in();
    // The first step looks like a stream starting, and prefetches.
    read(kDev, kBase + 4 * kPage, 1);
    read(kDev, kBase + 5 * kPage, 1);
    const IoguardRequesterStats first = requester();
    EXPECT_EQ(first.prefetch.walks, 1u);
    for (int i = 0; i < 50; i++) {
        read(kDev, kBase + 4 * kPage, 1);
        read(kDev, kBase + 5 * kPage, 1);
    }
    EXPECT_EQ(requester().prefetch.walks, first.prefetch.walks);
    EXPECT_EQ(requester().prefetch.issued, first.prefetch.issued);
}

TEST_F(StreamingTest, AStreamRightBehindTheMappingsBacksOff)
{
    // A driver mapping each one-page buffer just before its DMA, at the
    // next IOVA down (Linux's allocator), as for random 4 KiB reads: there
    // is never anything mapped ahead, and refills back off exponentially.
    guest_opt_in();
    const unsigned buffers = 192;
    for (unsigned i = 0; i < buffers; i++) {
        const uint64_t at = kBase + (buffers - i) * kPage;
        map(at, 1);
        read(kDev, at, 1);
    }
    const IoguardRequesterStats s = requester();
    EXPECT_EQ(s.prefetch.issued, 0u);
    EXPECT_EQ(s.iotlb_misses, buffers);
    // 191 steps, each a chance to refill: walks at the 1st, 3rd, 7th,
    // 15th, 31st, then every 32nd (63rd, 95th, 127th, 159th, 191st). The
    // last found kBase unmapped.
    EXPECT_EQ(s.prefetch.walks, 10u);

    // Other DMA takes the stream's place; the buffers go on, and the new
    // stream backs off as much as the old one did.
    for (unsigned other : {1000u, 1100u, 1200u, 1300u}) {
        map(kBase + other * kPage, 1);
        read(kDev, kBase + other * kPage, 1);
    }
    for (unsigned i = 0; i < 64; i++) {
        const uint64_t at = kBase - i * kPage;
        map(at, 1);
        read(kDev, at, 1);
    }
    EXPECT_LE(requester().prefetch.walks - s.prefetch.walks, 2u);

    // Once pages are mapped ahead again, a stream prefetches them at its
    // next try: it skips 31 tries, then prefetches the other 31 pages, as
    // the back-off is over.
    const uint64_t low = kBase - 128 * kPage;
    map(low, 64);
    read(kDev, low + 63 * kPage, 64, -1);
    EXPECT_EQ(requester().prefetch.issued, 31u);
}

TEST_F(StreamingTest, StopsAtAPageThatIsNotStreaming)
{
    map(kBase, 3);
    map(kBase + 3 * kPage, 8, false);
    guest_opt_in();
    read(kDev, kBase, 2);
    EXPECT_EQ(requester().prefetch.issued, 1u);
}

TEST_F(StreamingTest, StopsAtTheEndOfTheAddressSpace)
{
    // Mode 3 covers 39 bits: the page below 2^39 is the last one.
    const uint64_t last = (uint64_t{1} << 39) - kPage;
    d.map(root, 3, last, kPa, true, true);
    const IoguardStreamingRule everything{kDev, 0, ~uint64_t{0}};
    ioguard_iommu_add_streaming_rule(m.iommu, &everything);
    EXPECT_EQ(d.translate(kDev, last, IOGUARD_PERM_READ).translated_addr, kPa);
    EXPECT_EQ(requester().prefetch.issued, 0u);

    // Mode 6: the last page of the 64-bit space, streaming up, and page 0
    // streaming down.
    const uint64_t root6 = d.alloc_table();
    d.set_dte(kOther, Driver::dte_translated(root6, 6), kDomain + 1);
    const IoguardStreamingRule everything_other{kOther, 0, ~uint64_t{0}};
    ioguard_iommu_add_streaming_rule(m.iommu, &everything_other);
    d.map(root6, 6, ~uint64_t{0} & ~(kPage - 1), kPa, true, true);
    d.map(root6, 6, 0, kPa, true, true);
    d.map(root6, 6, kPage, kPa, true, true);
    EXPECT_EQ(d.translate(kOther, ~uint64_t{0} - 7, IOGUARD_PERM_READ).perm,
              unsigned(IOGUARD_PERM_RW));
    EXPECT_EQ(d.translate(kOther, kPage, IOGUARD_PERM_READ).perm,
              unsigned(IOGUARD_PERM_RW));
    EXPECT_EQ(d.translate(kOther, 0, IOGUARD_PERM_READ).perm,
              unsigned(IOGUARD_PERM_RW));
    EXPECT_TRUE(d.events().empty());
}

TEST_F(StreamingTest, PrefetchedEntriesObeyInvalidation)
{
    map(kBase, 16);
    guest_opt_in();
    read(kDev, kBase, 2);
    ASSERT_EQ(requester().prefetch.issued, kDepth);

    // Unmapped before use: gone after INVALIDATE_IOMMU_PAGES, exactly.
    m.w64(d.pte_address(root, 3, kBase + 3 * kPage), 0);
    EXPECT_EQ(d.translate(kDev, kBase + 3 * kPage, IOGUARD_PERM_NONE).perm,
              unsigned(IOGUARD_PERM_RW));   // still cached: lazy mode
    d.inv_pages(kDomain, kBase + 3 * kPage, false);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_EQ(d.translate(kDev, kBase + 3 * kPage, IOGUARD_PERM_READ).perm,
              0u);
    EXPECT_EQ(requester().prefetch.invalidated_unused, 0u) << "was used";

    m.w64(d.pte_address(root, 3, kBase + 5 * kPage), 0);
    d.inv_pages(kDomain, kBase + 5 * kPage, false);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_EQ(requester().prefetch.invalidated_unused, 1u);
    EXPECT_EQ(d.translate(kDev, kBase + 5 * kPage, IOGUARD_PERM_READ).perm,
              0u);

    d.queue(0, uint32_t(CMD_INV_ALL) << 28);
    const auto s = requester();
    EXPECT_EQ(s.prefetch.invalidated_unused + s.prefetch.used,
              s.prefetch.issued);
}

TEST_F(StreamingTest, HostPolicySelectsRequesterAndRange)
{
    map(kBase, 32, false);
    const IoguardStreamingRule rule{kDev, kBase, kBase + 16 * kPage - 1};
    ASSERT_TRUE(ioguard_iommu_add_streaming_rule(m.iommu, &rule));
    read(kDev, kBase, 32);
    // The rule's 16 pages: two walks, 14 prefetched, then the prefetcher
    // stops at the range's end and the rest are demand walks.
    auto s = requester();
    EXPECT_EQ(s.prefetch.issued, 14u);
    EXPECT_EQ(s.iotlb_misses, 2u + 16u);
    // Another requester reading the same IOVAs is not covered.
    read(kOther, kBase, 32);
    EXPECT_EQ(requester(kOther).prefetch.issued, 0u);

    IoguardStreamingRule listed[4];
    ASSERT_EQ(ioguard_iommu_streaming_rules(m.iommu, listed, 4), 1u);
    EXPECT_EQ(listed[0].last, rule.last);
    EXPECT_TRUE(ioguard_iommu_remove_streaming_rule(m.iommu, &rule));
    EXPECT_FALSE(ioguard_iommu_remove_streaming_rule(m.iommu, &rule));
    EXPECT_EQ(ioguard_iommu_streaming_rules(m.iommu, listed, 4), 0u);
    const IoguardStreamingRule backwards{kDev, 2, 1};
    EXPECT_FALSE(ioguard_iommu_add_streaming_rule(m.iommu, &backwards));
}

TEST_F(StreamingTest, PolicyRulesParse)
{
    IoguardStreamingRule r[4];
    char error[128];
    ASSERT_EQ(ioguard_parse_streaming_rules("00:05.0+01:00.0@0x1000-1fff", r,
                                            4, error, sizeof(error)),
              2);
    EXPECT_EQ(r[0].devid, kDev);
    EXPECT_EQ(r[0].first, 0u);
    EXPECT_EQ(r[0].last, ~uint64_t{0});
    EXPECT_EQ(r[1].devid, kOther);
    EXPECT_EQ(r[1].first, 0x1000u);
    EXPECT_EQ(r[1].last, 0x1fffu);
    EXPECT_EQ(ioguard_parse_streaming_rules("", r, 4, error, sizeof(error)), 0);

    const std::pair<const char *, const char *> bad[] = {
        {"5", "'5' is not a requester ID"},
        {"00:20.0", "'00:20.0' is not a requester ID"},
        {"00:05.8", "'00:05.8' is not a requester ID"},
        {"00:05.0@100", "'100' is not an IOVA range"},
        {"00:05.0@2-1", "IOVA range '2-1' ends before it starts"},
        {"00:05.0@0x-1", "'0x-1' is not an IOVA range"},
        {"00:05.0+", "a '+' with no rule after it"},
        {"00:05.0@0-11111111111111111", "is not an IOVA range"},
    };
    for (const auto &[text, message] : bad) {
        EXPECT_EQ(ioguard_parse_streaming_rules(text, r, 4, error,
                                                sizeof(error)),
                  -1)
            << text;
        EXPECT_NE(std::string(error).find(message), std::string::npos)
            << text << ": " << error;
    }
    EXPECT_EQ(ioguard_parse_streaming_rules("00:05.0+00:06.0", r, 1, error,
                                            sizeof(error)),
              -1);
}

TEST_F(StreamingTest, PrefetchCommandFillsTheIotlb)
{
    map(kBase, 16, false);
    prefetch_command(kDev, kBase, 10);
    ASSERT_TRUE(d.completion_wait());
    auto s = requester();
    EXPECT_EQ(s.prefetch.issued, 10u);
    EXPECT_EQ(s.prefetch.walks, 1u);
    read(kDev, kBase, 16);
    s = requester();
    EXPECT_EQ(s.iotlb_misses, 6u);
    EXPECT_EQ(s.prefetch.used, 10u);
    EXPECT_TRUE(d.events().empty());
}

TEST_F(StreamingTest, PrefetchCommandWithSizeStopsAtNotPresentSilently)
{
    map(kBase, 5, false);
    // S=1, address 0x107000: bits 12..14 set, 15 clear: the 64 KiB at
    // 0x100000. Pages 5.. are not mapped: the prefetch ends there.
    prefetch_command(kDev, kBase | 0x7000, 255, CMD_PREFETCH_SIZE_MASK);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_EQ(requester().prefetch.issued, 5u);
    EXPECT_TRUE(d.events().empty());
    EXPECT_EQ(d.translate(kDev, kBase + 5 * kPage, IOGUARD_PERM_READ).perm,
              0u);
}

TEST_F(StreamingTest, PrefetchCommandInvalRereadsTheTables)
{
    map(kBase, 1, false);
    read(kDev, kBase, 1);
    // Remapped elsewhere without an invalidation: the IOTLB is stale.
    const uint64_t pte = d.pte_address(root, 3, kBase);
    m.w64(pte, (m.r64(pte) & ~IOMMU_PTE_ADDR_MASK) | (kPa + 0x10000));
    prefetch_command(kDev, kBase, 1);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_EQ(d.translate(kDev, kBase, IOGUARD_PERM_READ).translated_addr, kPa);
    prefetch_command(kDev, kBase, 1, CMD_PREFETCH_INVAL_MASK);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_EQ(d.translate(kDev, kBase, IOGUARD_PERM_READ).translated_addr,
              kPa + 0x10000);
}

TEST_F(StreamingTest, PrefetchCommandErrors)
{
    map(kBase, 1, false);
    // A requester without translation: nothing to do, no event.
    prefetch_command(0x0200, kBase, 4);
    ASSERT_TRUE(d.completion_wait());
    EXPECT_TRUE(d.events().empty());
    // GN (guest tables, GTSup=0) and reserved bits are illegal commands.
    for (auto [dw2, dw1] : {std::pair<uint32_t, uint32_t>{CMD_PREFETCH_GN_MASK, 0},
                            {0x2, 0}, {0x100, 0}, {0, 1u << 20}}) {
        Machine m2{streaming_config()};
        Driver d2{m2};
        d2.enable();
        d2.queue(kDev | 4u << 24,
                 uint32_t(CMD_PREFETCH_IOMMU_PAGES) << 28 | dw1,
                 uint32_t(kBase) | dw2, 0);
        const auto ev = d2.events();
        ASSERT_EQ(ev.size(), 1u) << dw2 << " " << dw1;
        EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_ILL_CMD));
        EXPECT_FALSE(m2.guest_errors.empty());
    }
    d.queue(kDev | 0xffu << 16, uint32_t(CMD_PREFETCH_IOMMU_PAGES) << 28,
            uint32_t(kBase), 0);
    EXPECT_EQ(d.events().size(), 1u);

    // The last pages of the address space, with Inval: bounded, silent.
    Machine m3{streaming_config()};
    Driver d3{m3};
    d3.enable();
    d3.set_dte(kDev, Driver::dte_translated(d3.alloc_table(), 6), kDomain);
    d3.queue(kDev | 255u << 24, uint32_t(CMD_PREFETCH_IOMMU_PAGES) << 28,
             0xfffff000u | CMD_PREFETCH_INVAL_MASK, 0xffffffffu);
    EXPECT_TRUE(d3.completion_wait());
    EXPECT_TRUE(d3.events().empty());
}

TEST_F(StreamingTest, UnusedPrefetchesPushedOutAreCounted)
{
    // More prefetched pages than the IOTLB holds, none used.
    map(kBase, 512, false);
    for (uint16_t dev = 0x300; dev < 0x300 + 20; dev++) {
        d.set_dte(dev, Driver::dte_translated(root, 3), 100 + dev);
        prefetch_command(dev, kBase, 255);
    }
    ASSERT_TRUE(d.completion_wait());
    IoguardStats s;
    ioguard_iommu_get_stats(m.iommu, &s);
    EXPECT_EQ(s.prefetch.issued, 20u * 255);
    EXPECT_GT(s.prefetch.evicted_unused, 0u);
    EXPECT_LE(s.prefetch.issued - s.prefetch.evicted_unused, 256u * 8);
}

TEST_F(StreamingTest, LatencyModelPipelinesStreamingReadsOnly)
{
    map(kBase, 64);
    read(kDev, kBase, 64);      // CONSISTENT: the PTE bit does not count
    auto consistent = requester().model;
    EXPECT_EQ(consistent.reads, 64u);
    EXPECT_EQ(consistent.pipelined_reads, 0u);
    // 64 round trips, plus the walks: 3 entries for the first page, then
    // 1 per page through the page directory cache.
    EXPECT_EQ(consistent.read_ns, 64 * 1000u + (3 + 63) * 100u);

    ioguard_iommu_reset_stats(m.iommu);
    d.inv_domain(kDomain);
    ASSERT_TRUE(d.completion_wait());
    guest_opt_in();
    read(kDev, kBase, 64);
    const auto streaming = requester().model;
    // The first read walks 3 entries and waits a whole round trip; the
    // second walks 1 and is pipelined; the other 62 are prefetched and
    // pipelined 8 deep.
    EXPECT_EQ(streaming.read_ns,
              300u + 1000u + 100u + 64 * (1000u / kDepth) - 1000u / kDepth);
    EXPECT_EQ(streaming.pipelined_reads, 63u);
    EXPECT_EQ(requester().iotlb_misses, 2u);

    // Writes are posted: only their walks count.
    d.translate(kDev, kBase + 64 * kPage, IOGUARD_PERM_WRITE);   // faults
    map(kBase + 100 * kPage, 1, false);
    d.translate(kDev, kBase + 100 * kPage, IOGUARD_PERM_WRITE);
    EXPECT_EQ(requester().model.writes, 1u);
    EXPECT_EQ(requester().model.write_ns, 100u);
}

} // namespace
