// Page requests (PCIe PRI): the PPR log's entries as Linux's ppr.c decodes
// them, its states (off, stopped, full, not in RAM), its interrupt, the
// INVALID_PPR_REQUEST event for requests software cannot be asked about,
// COMPLETE_PPR_REQUEST's answer to the device, and the fault rules of the
// page-request and page-response sites.
#include <gtest/gtest.h>

#include "fake_guest.hh"
#include "fault_rules.hh"

using namespace ioguard_test;

namespace {

constexpr uint16_t kDev = 0x0028;
constexpr uint64_t kPprLog = 0x430000;
constexpr uint64_t kPprControl = 1ULL << CONTROL_PPR_EN |
                                 1ULL << CONTROL_PPRLOG_EN |
                                 1ULL << CONTROL_PPRINT_EN;
constexpr uint64_t kBaseControl =
    1ULL << CONTROL_IOMMU_EN | 1ULL << CONTROL_EVT_LOG_EN |
    1ULL << CONTROL_EVT_INT_EN | 1ULL << CONTROL_CMDBUF_EN;

// Linux's amd_iommu_types.h: how ppr.c takes an entry apart.
uint64_t ppr_req_type(uint64_t x) { return (x >> 60) & 0xf; }
uint64_t ppr_flags(uint64_t x) { return (x >> 48) & 0xfff; }
uint64_t ppr_devid(uint64_t x) { return x & 0xffff; }
uint64_t ppr_tag(uint64_t x) { return (x >> 32) & 0x3ff; }
uint64_t ppr_pasid(uint64_t x)
{
    return ((x >> 42) & 0xf) << 16 | ((x >> 16) & 0xffff);
}

IoguardConfig ppr_config(IoguardFaults *faults = nullptr)
{
    IoguardConfig c = test_config();
    c.guest_translation = true;
    c.faults = faults;
    return c;
}

IoguardPageRequest request(uint64_t address, uint32_t pasid = 5,
                           uint16_t group = 0x1a3, bool last = true)
{
    IoguardPageRequest r{};
    r.devid = kDev;
    r.pasid_valid = true;
    r.pasid = pasid;
    r.address = address;
    r.perm = IOGUARD_PERM_READ | IOGUARD_PERM_WRITE;
    r.group = group;
    r.last = last;
    return r;
}

struct PageRequestTest : ::testing::Test {
    Machine m{ppr_config()};
    Driver d{m};
    uint64_t ppr_head = 0;

    // As amd_iommu_enable_ppr_log: PPREn, the base with 2^len entries,
    // head and tail 0, PPRIntEn, PPRLogEn.
    void SetUp() override
    {
        d.enable();
        d.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_PPR);
        enable_ppr_log(9);
    }
    void enable_ppr_log(unsigned len, uint64_t base = kPprLog)
    {
        m.mmio_write(MMIO_PPR_LOG_OFFSET, base | uint64_t(len) << 56);
        m.mmio_write(MMIO_PPR_HEAD_OFFSET, 0, 4);
        m.mmio_write(MMIO_PPR_TAIL_OFFSET, 0, 4);
        m.mmio_write(MMIO_CONTROL_OFFSET, kBaseControl | kPprControl);
        ppr_head = 0;
    }
    unsigned send(const IoguardPageRequest &r)
    {
        const unsigned outcome = ioguard_iommu_page_request(m.iommu, &r);
        m.now += 10000000;  // past the coalescing of identical events
        return outcome;
    }
    // As amd_iommu_poll_ppr_log: the entries from head to tail, zeroed.
    std::vector<std::pair<uint64_t, uint64_t>> drain(unsigned len = 9)
    {
        std::vector<std::pair<uint64_t, uint64_t>> out;
        const uint64_t tail = m.mmio_read(MMIO_PPR_TAIL_OFFSET, 4);
        while (ppr_head != tail) {
            out.emplace_back(m.r64(kPprLog + ppr_head),
                             m.r64(kPprLog + ppr_head + 8));
            m.w64(kPprLog + ppr_head, 0);
            m.w64(kPprLog + ppr_head + 8, 0);
            ppr_head = (ppr_head + 16) % ((1u << len) * 16);
        }
        m.mmio_write(MMIO_PPR_HEAD_OFFSET, ppr_head, 4);
        return out;
    }
    uint64_t status() { return m.mmio_read(MMIO_STATUS_OFFSET, 4); }
    // As build_complete_ppr.
    void complete_ppr(uint16_t devid, uint32_t pasid, unsigned status,
                      uint16_t tag, bool gn)
    {
        d.queue(devid, uint32_t(CMD_COMPLETE_PPR) << 28 | (gn ? pasid : 0),
                gn ? CMD_INV_IOMMU_PAGES_GN_MASK : 0,
                (tag & 0x1ffu) | (status & 0xfu) << 12);
    }
};

TEST(PageRequestFeatures, OfferedWithGuestTranslationOnly)
{
    Machine with(ppr_config());
    const uint64_t efr = ioguard_iommu_efr(with.iommu);
    EXPECT_TRUE(efr & FEATURE_PPR);
    EXPECT_TRUE(efr & FEATURE_EPHSUP);
    Machine without;
    EXPECT_FALSE(ioguard_iommu_efr(without.iommu) &
                 (FEATURE_PPR | FEATURE_EPHSUP));
    // Without PPRSup there is nobody to ask: the device is answered at
    // once, and COMPLETE_PPR_REQUEST is an illegal command.
    Driver d{without};
    d.enable(kPprControl);
    d.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_PPR);
    const IoguardPageRequest r = request(0x7000);
    EXPECT_EQ(ioguard_iommu_page_request(without.iommu, &r),
              unsigned(IOGUARD_PAGE_REQUEST_FAILED));
    d.queue(kDev, uint32_t(CMD_COMPLETE_PPR) << 28);
    const auto events = d.events();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, unsigned(EVENT_TYPE_ILL_CMD));
    EXPECT_TRUE(without.page_responses.empty());
}

TEST_F(PageRequestTest, LoggedAsLinuxDecodesIt)
{
    IoguardPageRequest r = request(0x7fff12345abc, 0x2b7ce, 0x1a3, true);
    r.perm = IOGUARD_PERM_WRITE;
    r.pasid = 0xbeef;
    const int interrupts = m.interrupts;
    EXPECT_EQ(send(r), unsigned(IOGUARD_PAGE_REQUEST_LOGGED));
    EXPECT_EQ(m.interrupts, interrupts + 1);
    EXPECT_TRUE(status() & MMIO_STATUS_PPR_INT_MASK);
    const auto entries = drain();
    ASSERT_EQ(entries.size(), 1u);
    const uint64_t q0 = entries[0].first;
    EXPECT_EQ(ppr_req_type(q0), uint64_t(PPR_REQ_FAULT));
    EXPECT_EQ(ppr_devid(q0), kDev);
    EXPECT_EQ(ppr_pasid(q0), 0xbeefu);
    EXPECT_EQ(ppr_tag(q0), 0x3a3u) << "group 0x1a3, last of its group";
    EXPECT_EQ(ppr_flags(q0), uint64_t(PPR_FLAG_GN | PPR_FLAG_WRITE |
                                      PPR_FLAG_US));
    EXPECT_EQ(entries[0].second, 0x7fff12345000u);
    EXPECT_EQ(d.stats().page_requests, 1u);

    // A read by the kernel (US=0), PASID above 16 bits of the entry's
    // first field, not the last of its group.
    r = request(0x1000, 0xffff, 7, false);
    r.perm = IOGUARD_PERM_READ;
    r.exec = true;
    r.privileged = true;
    ASSERT_EQ(send(r), unsigned(IOGUARD_PAGE_REQUEST_LOGGED));
    const auto second = drain();
    ASSERT_EQ(second.size(), 1u);
    EXPECT_EQ(ppr_flags(second[0].first),
              uint64_t(PPR_FLAG_GN | PPR_FLAG_READ | PPR_FLAG_EXEC));
    EXPECT_EQ(ppr_tag(second[0].first), 7u);
    EXPECT_EQ(ppr_pasid(second[0].first), 0xffffu);
    EXPECT_TRUE(d.events().empty());
}

TEST_F(PageRequestTest, InterruptOnlyWithPprIntEn)
{
    m.mmio_write(MMIO_CONTROL_OFFSET,
                 kBaseControl | 1ULL << CONTROL_PPR_EN |
                     1ULL << CONTROL_PPRLOG_EN);
    const int interrupts = m.interrupts;
    EXPECT_EQ(send(request(0x2000)), unsigned(IOGUARD_PAGE_REQUEST_LOGGED));
    EXPECT_EQ(m.interrupts, interrupts);
    EXPECT_TRUE(status() & MMIO_STATUS_PPR_INT_MASK) << "but the status says";
    m.mmio_write(MMIO_STATUS_OFFSET, MMIO_STATUS_PPR_INT_MASK, 4);
    EXPECT_FALSE(status() & MMIO_STATUS_PPR_INT_MASK) << "write 1 to clear";
}

TEST_F(PageRequestTest, X2apicModeUsesThePprLogsMessage)
{
    Machine mxt([] {
        IoguardConfig c = ppr_config();
        c.xtsup = true;
        return c;
    }());
    Driver dxt{mxt};
    mxt.mmio_write(MMIO_INTCAPXT_EVT_OFFSET, 0x11ULL << 8 | 0x21ULL << 32);
    mxt.mmio_write(MMIO_INTCAPXT_PPR_OFFSET, 0x34ULL << 8 | 0x26ULL << 32);
    dxt.enable(1ULL << CONTROL_XT_EN | 1ULL << CONTROL_INTCAPXT_EN |
               kPprControl);
    mxt.mmio_write(MMIO_PPR_LOG_OFFSET, kPprLog | 9ULL << 56);
    dxt.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_PPR);
    const IoguardPageRequest r = request(0x3000);
    ASSERT_EQ(ioguard_iommu_page_request(mxt.iommu, &r),
              unsigned(IOGUARD_PAGE_REQUEST_LOGGED));
    EXPECT_EQ(mxt.interrupts, 0);
    ASSERT_EQ(mxt.messages.size(), 1u);
    EXPECT_EQ(mxt.messages[0].first, 0xfee34000u);
    EXPECT_EQ(mxt.messages[0].second, 0x26u);
}

// Requests software cannot be asked about: INVALID_PPR_REQUEST, with the
// PASID and tag where Linux's amd_iommu_report_ppr_err reads them, and RX
// clear so that it answers with a failure.
TEST_F(PageRequestTest, InvalidRequestsAreEvents)
{
    auto expect_invalid = [&](const IoguardPageRequest &r, const char *why) {
        SCOPED_TRACE(why);
        ASSERT_EQ(send(r), unsigned(IOGUARD_PAGE_REQUEST_INVALID));
        EXPECT_TRUE(drain().empty());
        const uint64_t tail = m.mmio_read(MMIO_EVT_TAIL_OFFSET, 4);
        const uint64_t at = kEventLog + (tail + 512 * 16 - 16) % (512 * 16);
        const uint32_t dw0 = m.r32(at), dw1 = m.r32(at + 4);
        const auto events = d.events();
        ASSERT_EQ(events.size(), 1u);
        EXPECT_EQ(events[0].type, unsigned(EVENT_TYPE_INV_PPR_REQ));
        EXPECT_EQ(events[0].devid, r.devid);
        EXPECT_EQ(events[0].address, r.address & ~0xfffULL);
        EXPECT_EQ(events[0].flags & 1u, 0u) << "RX=0: software answers";
        const uint64_t q0 = uint64_t(dw1) << 32 | dw0;
        EXPECT_EQ(ppr_pasid(q0), r.pasid_valid ? r.pasid & 0xfffff : 0);
        EXPECT_EQ(dw1 & 0x3ff, (r.group & 0x1ffu) | (r.last ? 0x200u : 0));
    };
    d.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_TV);
    d.inv_dte(kDev);
    expect_invalid(request(0x5000, 0x1234, 0x55), "DTE.PPR clear");
    d.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_PPR);
    d.inv_dte(kDev);
    expect_invalid(request(0x6000, 0x10000), "a PASID beyond PASmax");
    expect_invalid([] {
        IoguardPageRequest r = request(0x7000, 1, 0x22, false);
        r.devid = 0x0300;   // a DTE of zeros
        return r;
    }(), "no valid DTE");
    m.mmio_write(MMIO_CONTROL_OFFSET, kBaseControl |
                 1ULL << CONTROL_PPRLOG_EN | 1ULL << CONTROL_PPRINT_EN);
    expect_invalid(request(0x8000), "PPREn clear");

    std::vector<IoguardFaultRecord> records(8);
    uint64_t overwritten = 0;
    records.resize(ioguard_iommu_get_fault_records(
        m.iommu, records.data(), records.size(), &overwritten));
    ASSERT_EQ(records.size(), 4u);
    EXPECT_EQ(records[0].reason, unsigned(IOGUARD_FAULT_INVALID_PAGE_REQUEST));
    EXPECT_EQ(records[0].pasid, 0x1234);
    EXPECT_EQ(records[1].pasid, 0x10000) << "all 20 bits";
    EXPECT_STREQ(ioguard_event_name(records[0].event_type),
                 "invalid-ppr-request");
}

// Where no answer can come, the IOMMU says so at once: the device takes it
// as a Response Failure, and nothing is written.
TEST_F(PageRequestTest, NoLogNoAnswerer)
{
    m.mmio_write(MMIO_CONTROL_OFFSET,
                 kBaseControl | 1ULL << CONTROL_PPR_EN);
    EXPECT_FALSE(status() & MMIO_STATUS_PPR_RUN_MASK);
    EXPECT_EQ(send(request(0x1000)), unsigned(IOGUARD_PAGE_REQUEST_FAILED));
    m.mmio_write(MMIO_CONTROL_OFFSET, kPprControl);     // IOMMU off
    EXPECT_EQ(send(request(0x1000)), unsigned(IOGUARD_PAGE_REQUEST_FAILED));
    EXPECT_EQ(m.mmio_read(MMIO_PPR_TAIL_OFFSET), 0u);
    EXPECT_EQ(m.r64(kPprLog), 0u);
    EXPECT_EQ(d.stats().page_requests, 2u);
}

// 2^8 entries hold 255 requests; the next one overflows the log, which
// stops until the driver clears PPROverflow and re-enables it
// (amd_iommu_restart_ppr_log).
TEST_F(PageRequestTest, OverflowStopsTheLogUntilRestarted)
{
    enable_ppr_log(8);
    for (unsigned i = 0; i < 255; i++) {
        ASSERT_EQ(send(request(0x1000 * (i + 1), 1, i & 0x1ff)),
                  unsigned(IOGUARD_PAGE_REQUEST_LOGGED)) << i;
    }
    const int interrupts = m.interrupts;
    EXPECT_EQ(send(request(0x200000)), unsigned(IOGUARD_PAGE_REQUEST_FAILED));
    EXPECT_TRUE(status() & MMIO_STATUS_PPR_OVERFLOW_MASK);
    EXPECT_FALSE(status() & MMIO_STATUS_PPR_RUN_MASK);
    EXPECT_EQ(m.interrupts, interrupts + 1);
    EXPECT_EQ(drain(8).size(), 255u);
    EXPECT_EQ(send(request(0x201000)), unsigned(IOGUARD_PAGE_REQUEST_FAILED))
        << "drained, but still stopped";

    m.mmio_write(MMIO_STATUS_OFFSET, MMIO_STATUS_PPR_OVERFLOW_MASK, 4);
    m.mmio_write(MMIO_CONTROL_OFFSET, kBaseControl | 1ULL << CONTROL_PPR_EN |
                                          1ULL << CONTROL_PPRINT_EN);
    m.mmio_write(MMIO_CONTROL_OFFSET, kBaseControl | kPprControl);
    EXPECT_TRUE(status() & MMIO_STATUS_PPR_RUN_MASK);
    EXPECT_EQ(send(request(0x202000)), unsigned(IOGUARD_PAGE_REQUEST_LOGGED));
    const auto entries = drain(8);
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0].second, 0x202000u);
}

TEST_F(PageRequestTest, LogOutsideRamStopsIt)
{
    enable_ppr_log(9, kRamSize + 0x10000);
    EXPECT_EQ(send(request(0x1000)), unsigned(IOGUARD_PAGE_REQUEST_FAILED));
    EXPECT_FALSE(status() & MMIO_STATUS_PPR_RUN_MASK);
    ASSERT_FALSE(m.guest_errors.empty());
    EXPECT_NE(m.guest_errors.back().find("PPR log"), std::string::npos);
    EXPECT_EQ(m.mmio_read(MMIO_PPR_TAIL_OFFSET), 0u);
}

TEST_F(PageRequestTest, PointersStayInsideTheLog)
{
    enable_ppr_log(8);
    m.mmio_write(MMIO_PPR_TAIL_OFFSET, 0xfffffff0, 4);
    EXPECT_LT(m.mmio_read(MMIO_PPR_TAIL_OFFSET), 256u * 16);
    m.mmio_write(MMIO_PPR_HEAD_OFFSET, 0x7fff8, 4);
    EXPECT_LT(m.mmio_read(MMIO_PPR_HEAD_OFFSET), 256u * 16);
    EXPECT_EQ(m.mmio_read(MMIO_PPR_HEAD_OFFSET) % 16, 0u);
}

TEST_F(PageRequestTest, CompletePprRequestAnswersTheDevice)
{
    complete_ppr(kDev, 0x2b7ce, IOGUARD_PRG_SUCCESS, 0x1a3, true);
    complete_ppr(kDev, 0, 2 /* Linux's IOMMU_PAGE_RESP_FAILURE */, 0x7, false);
    ASSERT_TRUE(d.completion_wait());
    ASSERT_EQ(m.page_responses.size(), 2u);
    EXPECT_EQ(m.page_responses[0],
              (Machine::PageResponse{kDev, true, 0x2b7ce, 0x1a3, 0}));
    EXPECT_EQ(m.page_responses[1],
              (Machine::PageResponse{kDev, false, 0, 0x7, 2}));
    EXPECT_EQ(d.stats().page_responses, 2u);
    EXPECT_TRUE(d.events().empty());
}

TEST_F(PageRequestTest, CompletePprRequestWithReservedBitsIsIllegal)
{
    const uint64_t at = kCmdBuf + d.cmd_tail;
    d.queue(kDev, uint32_t(CMD_COMPLETE_PPR) << 28, 0, 0x1a3 | 1u << 20);
    EXPECT_FALSE(d.completion_wait()) << "the command buffer stopped";
    const auto events = d.events();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, unsigned(EVENT_TYPE_ILL_CMD));
    EXPECT_EQ(events[0].address, at);
    EXPECT_TRUE(m.page_responses.empty());
    ASSERT_FALSE(m.guest_errors.empty());
    EXPECT_NE(m.guest_errors.back().find("COMPLETE_PPR_REQUEST"),
              std::string::npos);
}

TEST_F(PageRequestTest, SnapshotKeepsThePprLog)
{
    ASSERT_EQ(send(request(0x4000)), unsigned(IOGUARD_PAGE_REQUEST_LOGGED));
    size_t size = 0;
    uint8_t *state = ioguard_iommu_save_state(m.iommu, &size);
    Machine other(ppr_config());
    const bool loaded = ioguard_iommu_load_state(other.iommu, state, size);
    free(state);
    ASSERT_TRUE(loaded);
    EXPECT_EQ(other.mmio_read(MMIO_PPR_LOG_OFFSET), kPprLog | 9ULL << 56);
    EXPECT_EQ(other.mmio_read(MMIO_PPR_TAIL_OFFSET), 16u);
    EXPECT_TRUE(other.mmio_read(MMIO_STATUS_OFFSET) &
                MMIO_STATUS_PPR_RUN_MASK);
}

struct PageRequestFaultTest : ::testing::Test {
    FaultRules faults;
    Machine mf{ppr_config(faults.f)};
    Driver df{mf};

    void SetUp() override
    {
        df.enable();
        df.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_PPR);
        mf.mmio_write(MMIO_PPR_LOG_OFFSET, kPprLog | 9ULL << 56);
        mf.mmio_write(MMIO_CONTROL_OFFSET, kBaseControl | kPprControl);
    }
    void add(const std::string &rule) { faults.add(mf.iommu, mf.now, rule); }
    unsigned send(const IoguardPageRequest &r)
    {
        return ioguard_iommu_page_request(mf.iommu, &r);
    }
    void answer(uint16_t group)
    {
        df.queue(kDev, uint32_t(CMD_COMPLETE_PPR) << 28 | 5,
                 CMD_INV_IOMMU_PAGES_GN_MASK, group);
        ASSERT_TRUE(df.completion_wait());
    }
};

TEST_F(PageRequestFaultTest, RequestsDroppedFailedOrOverflowing)
{
    add("site=page-request,when=nth:1,action=drop");
    add("site=page-request,access=write,when=once,action=fault");
    add("site=page-request,range=0x9000-0x9fff,action=overflow");
    // Lost: the device believes it logged and waits; nothing is there.
    EXPECT_EQ(send(request(0x7000)), unsigned(IOGUARD_PAGE_REQUEST_LOGGED));
    EXPECT_EQ(mf.mmio_read(MMIO_PPR_TAIL_OFFSET), 0u);
    // A Response Failure at once for the first write.
    IoguardPageRequest w = request(0x8000);
    w.perm = IOGUARD_PERM_WRITE;
    EXPECT_EQ(send(w), unsigned(IOGUARD_PAGE_REQUEST_FAILED));
    EXPECT_EQ(mf.mmio_read(MMIO_PPR_TAIL_OFFSET), 0u);
    // An ordinary one is logged.
    EXPECT_EQ(send(request(0x7000)), unsigned(IOGUARD_PAGE_REQUEST_LOGGED));
    EXPECT_EQ(mf.mmio_read(MMIO_PPR_TAIL_OFFSET), 16u);
    // The log "full": PPROverflow, stopped until the driver restarts it.
    EXPECT_EQ(send(request(0x9000)), unsigned(IOGUARD_PAGE_REQUEST_FAILED));
    const uint64_t status = mf.mmio_read(MMIO_STATUS_OFFSET, 4);
    EXPECT_TRUE(status & MMIO_STATUS_PPR_OVERFLOW_MASK);
    EXPECT_FALSE(status & MMIO_STATUS_PPR_RUN_MASK);
    EXPECT_EQ(send(request(0xa000)), unsigned(IOGUARD_PAGE_REQUEST_FAILED));
    IoguardFiredFault fired[8];
    uint64_t dropped = 0;
    const size_t n = ioguard_faults_fired(faults.f, fired, 8, &dropped);
    ASSERT_EQ(n, 3u);
    EXPECT_EQ(fired[0].site, unsigned(IOGUARD_FAULT_SITE_PAGE_REQUEST));
    EXPECT_EQ(fired[0].hit.requester, kDev);
    EXPECT_EQ(fired[2].hit.address, 0x9000u);
}

TEST_F(PageRequestFaultTest, ResponsesDroppedLateOrFailed)
{
    add("site=page-response,when=nth:1,action=drop");
    add("site=page-response,when=nth:2,action=delay:2ms");
    add("site=page-response,when=nth:3,action=fault");
    answer(1);
    EXPECT_TRUE(mf.page_responses.empty()) << "dropped";
    mf.now = 1000000;
    answer(2);
    EXPECT_TRUE(mf.page_responses.empty()) << "late";
    EXPECT_EQ(mf.wake_deadline, 3000000u);
    mf.now = 3000000;
    ioguard_iommu_run_timers(mf.iommu);
    ASSERT_EQ(mf.page_responses.size(), 1u);
    EXPECT_EQ(mf.page_responses[0],
              (Machine::PageResponse{kDev, true, 5, 2, IOGUARD_PRG_SUCCESS}));
    answer(3);
    ASSERT_EQ(mf.page_responses.size(), 2u);
    EXPECT_EQ(mf.page_responses[1].code, unsigned(IOGUARD_PRG_FAILURE))
        << "answered with a Response Failure";
    answer(4);
    ASSERT_EQ(mf.page_responses.size(), 3u);
    EXPECT_EQ(mf.page_responses[2].code, unsigned(IOGUARD_PRG_SUCCESS));
}

} // namespace
