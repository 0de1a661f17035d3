// Fault records (query-ioguard-faults) and the DMA verifier's findings.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "translated_test.hh"

using namespace ioguard_test;

namespace {

constexpr uint16_t kDev = 0x0100;
constexpr uint16_t kDomain = 9;

std::vector<IoguardFaultRecord> records(Machine &m, uint64_t *lost = nullptr)
{
    std::vector<IoguardFaultRecord> out(1024);
    uint64_t overwritten = 0;
    out.resize(ioguard_iommu_get_fault_records(m.iommu, out.data(), out.size(),
                                               &overwritten));
    if (lost) {
        *lost = overwritten;
    }
    return out;
}

std::string reason(const IoguardFaultRecord &r)
{
    const char *name = ioguard_fault_reason_name(r.reason);
    return name ? name : "?";
}

using FaultRecordTest = TranslatedTest<kDev, kDomain>;

TEST_F(FaultRecordTest, EachFaultIsDecodedWithItsReason)
{
    d.map(root, 3, 0x10000, 0xa000, true, false);
    d.translate(kDev, 0x20000, IOGUARD_PERM_READ);      // not mapped
    d.translate(kDev, 0x10008, IOGUARD_PERM_WRITE);     // read-only
    d.translate(kDev, 1ULL << 40, IOGUARD_PERM_READ);   // beyond 3 levels
    d.set_dte(0x0200, 0x7c | DTE_FLAG_V);               // reserved bits
    d.translate(0x0200, 0x3000, IOGUARD_PERM_READ);

    const auto r = records(m);
    ASSERT_EQ(r.size(), 4u);
    EXPECT_EQ(reason(r[0]), "not-present");
    EXPECT_EQ(r[0].seq, 1u);
    EXPECT_EQ(r[0].event_type, unsigned(EVENT_TYPE_IO_FAULT));
    EXPECT_EQ(r[0].devid, kDev);
    EXPECT_EQ(r[0].domain, kDomain);
    EXPECT_EQ(r[0].address, 0x20000u);
    EXPECT_TRUE(r[0].address_is_iova);
    EXPECT_EQ(r[0].access, unsigned(IOGUARD_PERM_READ));
    EXPECT_EQ(r[0].delivery, unsigned(IOGUARD_DELIVERY_LOGGED));
    EXPECT_EQ(reason(r[1]), "permission");
    EXPECT_EQ(r[1].access, unsigned(IOGUARD_PERM_WRITE));
    EXPECT_EQ(r[1].address, 0x10008u);
    EXPECT_EQ(reason(r[2]), "out-of-range");
    EXPECT_EQ(reason(r[3]), "illegal-device-table-entry");
    EXPECT_EQ(r[3].devid, 0x0200);
    EXPECT_EQ(r[3].domain, -1);
    EXPECT_LT(r[0].time_ns, r[1].time_ns);
    // The guest got the same four events.
    EXPECT_EQ(d.events().size(), 4u);
}

TEST_F(FaultRecordTest, TableAndCommandErrorsNameTheirAddress)
{
    d.set_dte(kDev, Driver::dte_translated(kRamSize + 0x1000, 3), kDomain);
    d.translate(kDev, 0x1000, IOGUARD_PERM_READ);
    d.queue(0, 0xf0000000);     // opcode 0xf: illegal
    const auto r = records(m);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(reason(r[0]), "page-table-not-in-ram");
    EXPECT_FALSE(r[0].address_is_iova);
    EXPECT_EQ(r[0].address, kRamSize + 0x1000 + ((0x1000 >> 30) & 0x1ff) * 8);
    EXPECT_EQ(reason(r[1]), "illegal-command");
    EXPECT_EQ(r[1].devid, -1);
    EXPECT_EQ(r[1].address, kCmdBuf);
    EXPECT_EQ(r[1].access, unsigned(IOGUARD_PERM_NONE));
}

TEST_F(FaultRecordTest, EventsTheLogNeverReceivedSayWhy)
{
    // With the event log off, a fault is still recorded, as lost.
    const uint64_t on = (1ULL << CONTROL_IOMMU_EN) |
                        (1ULL << CONTROL_CMDBUF_EN);
    m.mmio_write(MMIO_CONTROL_OFFSET, on);
    d.translate(kDev, 0x5000, IOGUARD_PERM_READ);
    // A log of 256 entries overflows on its 256th event (one slot stays free).
    m.mmio_write(MMIO_EVT_BUF_OFFSET, kEventLog | (8ULL << 56));
    m.mmio_write(MMIO_CONTROL_OFFSET, on | (1ULL << CONTROL_EVT_LOG_EN));
    for (uint64_t i = 0; i < 256; i++) {
        d.translate(kDev, 0x100000 + (i << 12), IOGUARD_PERM_READ);
    }
    uint64_t lost = 0;
    auto r = records(m, &lost);
    ASSERT_GE(r.size(), 1u);
    // 64 records held (the fake machine's ring), the older ones pushed out.
    ASSERT_EQ(r.size(), 64u);
    EXPECT_EQ(lost, 257u - 64u);
    EXPECT_EQ(r.front().seq, 257u - 63u);
    EXPECT_EQ(r.back().seq, 257u);
    EXPECT_EQ(r.back().delivery, unsigned(IOGUARD_DELIVERY_LOG_FULL));
    EXPECT_EQ(r[r.size() - 2].delivery, unsigned(IOGUARD_DELIVERY_LOGGED));

    ioguard_iommu_clear_fault_records(m.iommu);
    EXPECT_TRUE(records(m, &lost).empty());
    EXPECT_EQ(lost, 0u);
    d.translate(kDev, 0x5000, IOGUARD_PERM_READ);
    const auto after = records(m);
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(after[0].seq, 258u);   // sequence numbers go on
    // The log stopped at the overflow and the driver did not restart it.
    EXPECT_EQ(after[0].delivery, unsigned(IOGUARD_DELIVERY_LOG_STOPPED));
}

TEST(FaultRecordsOff, NoRingNoRecords)
{
    Machine m(test_config(true, true, false, true, 0, false));
    Driver d{m};
    d.enable();
    d.set_dte(kDev, Driver::dte_translated(d.alloc_table(), 3), kDomain);
    d.translate(kDev, 0x5000, IOGUARD_PERM_READ);
    EXPECT_TRUE(records(m).empty());
    EXPECT_EQ(d.events().size(), 1u);
    // The host is still told (trace events), numbered.
    ASSERT_EQ(m.records_seen.size(), 1u);
    EXPECT_EQ(m.records_seen[0].seq, 1u);
    EXPECT_EQ(m.records_seen[0].reason, unsigned(IOGUARD_FAULT_NOT_PRESENT));
}

// The verifier: DMA that only a stale IOTLB entry lets through.
struct VerifierTest : ::testing::Test {
    Machine m{test_config(true, true, false, true, 64, true)};
    Driver d{m};
    uint64_t root = 0;
    void SetUp() override
    {
        d.enable();
        root = d.alloc_table();
        d.set_dte(kDev, Driver::dte_translated(root, 3), kDomain);
        d.map(root, 3, 0x40000, 0xa000, true, true);
        // The device reads the buffer: the IOTLB now holds the translation.
        EXPECT_EQ(d.translate(kDev, 0x40000, IOGUARD_PERM_READ).perm,
                  unsigned(IOGUARD_PERM_RW));
    }
    void unmap() { m.w64(d.pte_address(root, 3, 0x40000), 0); }
};

TEST_F(VerifierTest, UseAfterUnmapIsFlaggedButTheGuestSeesHardware)
{
    unmap();    // lazy mode: the PTE is gone, no invalidation yet
    const auto t = d.translate(kDev, 0x40010, IOGUARD_PERM_WRITE);
    // What real hardware does: the stale entry still translates.
    EXPECT_EQ(t.perm, unsigned(IOGUARD_PERM_RW));
    EXPECT_EQ(t.translated_addr, 0xa000u);
    EXPECT_TRUE(d.events().empty());

    const auto r = records(m);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(reason(r[0]), "use-after-unmap");
    EXPECT_EQ(r[0].delivery, unsigned(IOGUARD_DELIVERY_NOT_REPORTED));
    EXPECT_EQ(r[0].devid, kDev);
    EXPECT_EQ(r[0].domain, kDomain);
    EXPECT_EQ(r[0].address, 0x40010u);
    EXPECT_EQ(r[0].access, unsigned(IOGUARD_PERM_WRITE));
    EXPECT_EQ(r[0].stale_target, 0xa010u);
    EXPECT_FALSE(r[0].now_mapped);
    ASSERT_EQ(m.guest_errors.size(), 1u);
    EXPECT_NE(m.guest_errors[0].find("use after unmap"), std::string::npos);
}

TEST_F(VerifierTest, RemappedElsewhereIsAStaleTranslation)
{
    d.map(root, 3, 0x40000, 0xc000, true, false);
    d.translate(kDev, 0x40000, IOGUARD_PERM_READ);
    const auto r = records(m);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(reason(r[0]), "stale-translation");
    EXPECT_EQ(r[0].stale_target, 0xa000u);
    EXPECT_TRUE(r[0].now_mapped);
    EXPECT_EQ(r[0].current_target, 0xc000u);
    EXPECT_EQ(r[0].current_perm, unsigned(IOGUARD_PERM_READ));
}

TEST_F(VerifierTest, WriteToAPageNowReadOnlyIsStaleAReadIsNot)
{
    d.map(root, 3, 0x40000, 0xa000, true, false);
    d.translate(kDev, 0x40000, IOGUARD_PERM_READ);
    EXPECT_TRUE(records(m).empty());
    d.translate(kDev, 0x40000, IOGUARD_PERM_WRITE);
    const auto r = records(m);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(reason(r[0]), "stale-translation");
}

TEST_F(VerifierTest, AfterTheInvalidationTheSameDmaFaults)
{
    unmap();
    d.inv_pages(kDomain, 0x40000, false);   // strict mode does this at once
    EXPECT_EQ(d.translate(kDev, 0x40000, IOGUARD_PERM_READ).perm, 0u);
    const auto r = records(m);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(reason(r[0]), "not-present");
    EXPECT_EQ(r[0].delivery, unsigned(IOGUARD_DELIVERY_LOGGED));
}

TEST_F(VerifierTest, RepeatedStaleUseOfOnePageIsOneFinding)
{
    unmap();
    IoguardTranslation t;
    for (int i = 0; i < 100; i++) {     // no time passes: one DMA burst
        ioguard_iommu_translate(m.iommu, kDev, 0x40000 + 8 * i,
                                IOGUARD_PERM_READ, &t);
    }
    EXPECT_EQ(records(m).size(), 1u);
}

TEST(VerifierOff, StaleUseGoesUnnoticedAsOnHardware)
{
    Machine m;
    Driver d{m};
    d.enable();
    const uint64_t root = d.alloc_table();
    d.set_dte(kDev, Driver::dte_translated(root, 3), kDomain);
    d.map(root, 3, 0x40000, 0xa000, true, true);
    d.translate(kDev, 0x40000, IOGUARD_PERM_READ);
    m.w64(d.pte_address(root, 3, 0x40000), 0);
    EXPECT_EQ(d.translate(kDev, 0x40000, IOGUARD_PERM_READ).perm,
              unsigned(IOGUARD_PERM_RW));
    EXPECT_TRUE(records(m).empty());
}

} // namespace

// ATS: the device keeps translations of its own and says when it uses one.
TEST_F(VerifierTest, AtsUseAfterItsInvalidationIsFlagged)
{
    const uint64_t kept = ioguard_iommu_device_iotlb_generation(m.iommu);
    unmap();
    d.inv_pages(kDomain, 0x40000, false);
    d.inv_iotlb_page(kDev, 0x40000);    // ... which the device missed
    ASSERT_TRUE(d.completion_wait());
    EXPECT_GT(ioguard_iommu_device_iotlb_generation(m.iommu), kept);
    ioguard_iommu_ats_used(m.iommu, kDev, -1, false, 0x40010, 0xa010,
                           IOGUARD_PERM_WRITE, kept);
    const auto r = records(m);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(reason(r[0]), "ats-use-after-invalidation");
    EXPECT_EQ(r[0].delivery, unsigned(IOGUARD_DELIVERY_NOT_REPORTED));
    EXPECT_EQ(r[0].devid, kDev);
    EXPECT_EQ(r[0].address, 0x40010u);
    EXPECT_EQ(r[0].access, unsigned(IOGUARD_PERM_WRITE));
    EXPECT_EQ(r[0].stale_target, 0xa010u);
    EXPECT_FALSE(r[0].now_mapped);
    ASSERT_EQ(m.guest_errors.size(), 1u);
    EXPECT_NE(m.guest_errors[0].find("through an ATS translation after an "
                                     "INVALIDATE_IOTLB_PAGES covered it"),
              std::string::npos);
}

TEST_F(VerifierTest, AtsUseIsOnlyFlaggedAfterItsOwnInvalidation)
{
    const uint64_t kept = ioguard_iommu_device_iotlb_generation(m.iommu);
    unmap();
    // Not invalidated yet (the guest's lazy window): not this finding.
    ioguard_iommu_ats_used(m.iommu, kDev, -1, false, 0x40000, 0xa000,
                           IOGUARD_PERM_READ, kept);
    // Another device's invalidation, or another page's.
    d.inv_iotlb_page(kDev + 1, 0x40000);
    d.inv_iotlb_page(kDev, 0x80000);
    ASSERT_TRUE(d.completion_wait());
    ioguard_iommu_ats_used(m.iommu, kDev, -1, false, 0x40000, 0xa000,
                           IOGUARD_PERM_READ, kept);
    // A translation the device got after the invalidation.
    d.inv_iotlb_page(kDev, 0x40000);
    ASSERT_TRUE(d.completion_wait());
    const uint64_t later = ioguard_iommu_device_iotlb_generation(m.iommu);
    ioguard_iommu_ats_used(m.iommu, kDev, -1, false, 0x40000, 0xa000,
                           IOGUARD_PERM_READ, later);
    EXPECT_TRUE(records(m).empty());
    // Invalidated but still mapped so: keeping it did no harm.
    d.map(root, 3, 0x40000, 0xa000, true, true);
    ioguard_iommu_ats_used(m.iommu, kDev, -1, false, 0x40000, 0xa000,
                           IOGUARD_PERM_READ, kept);
    EXPECT_TRUE(records(m).empty());
}
