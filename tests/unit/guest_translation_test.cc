// Guest translation: GCR3 tables, v2 (x86-64) page tables of every shape,
// their Accessed and Dirty bits, GN invalidations, and host tables under
// the guest's, for requests without a PASID through DTE.GIoV (Linux's
// amd_iommu=pgtbl_v2).
#include <gtest/gtest.h>

#include "guest_test.hh"
#include "fault_rules.hh"

using namespace ioguard_test;

namespace {

TEST(GuestTranslationFeatures, OfferedOnlyWhenAsked)
{
    Machine plain;
    EXPECT_EQ(ioguard_iommu_efr(plain.iommu) &
                  (FEATURE_GT | FEATURE_GIOSUP | (3ULL << FEATURE_GLX_SHIFT)),
              0u);
    Machine guest{guest_config()};
    const uint64_t efr = ioguard_iommu_efr(guest.iommu);
    EXPECT_TRUE(efr & FEATURE_GT);
    EXPECT_TRUE(efr & FEATURE_GIOSUP);
    EXPECT_TRUE(efr & FEATURE_GATS_5_LEVELS);
    EXPECT_EQ((efr >> FEATURE_GLX_SHIFT) & 3, 1u);
    // Linux: max_pasids = 2^(PASmax+1) - 1 must fit in 16 bits.
    EXPECT_EQ((efr >> FEATURE_PASMAX_SHIFT) & 0x1f, 15u);
}

TEST_F(GuestTest, PasidZeroTablesTranslateRequestsWithoutAPasid)
{
    const uint64_t gva = 0x7fffffffe000ULL;     // the top of Linux's aperture
    map(cr3, gva, 0x777000);
    const auto t = d.translate(kDev, gva | 0x123, IOGUARD_PERM_WRITE);
    EXPECT_EQ(t.perm, unsigned(IOGUARD_PERM_RW));
    EXPECT_EQ(t.translated_addr, 0x777000u);
    EXPECT_EQ(t.addr_mask, 0xfffu);
    // One GCR3 entry and four v2 entries.
    EXPECT_EQ(d.stats().page_walk_levels, 5u);
    EXPECT_EQ(d.stats().guest_walks, 1u);
    EXPECT_TRUE(d.events().empty());
    // The second is an IOTLB hit.
    EXPECT_EQ(d.translate(kDev, gva, IOGUARD_PERM_READ).translated_addr,
              0x777000u);
    EXPECT_EQ(d.stats().iotlb_hits, 1u);
}

TEST_F(GuestTest, WithoutGtEnTheGuestFieldsAreNotUsed)
{
    map(cr3, 0x1000, 0x777000);
    m.mmio_write(MMIO_CONTROL_OFFSET,
                 m.mmio_read(MMIO_CONTROL_OFFSET) & ~kControlGt);
    // Mode 0 with IR/IW: untranslated.
    const auto t = d.translate(kDev, 0x1000, IOGUARD_PERM_READ);
    EXPECT_EQ(t.translated_addr, 0u);
    EXPECT_EQ(t.perm, unsigned(IOGUARD_PERM_RW));
}

TEST(GuestTranslationOff, GuestFieldsAreIgnored)
{
    Machine m;      // guest_translation = false: GTEn is not honoured
    Driver d{m};
    d.enable(kControlGt);
    const GuestDte dte = guest_dte(0x5000);
    d.set_dte(kDev, dte.q0, dte.q1, dte.q2);
    const auto t = d.translate(kDev, 0x1000, IOGUARD_PERM_READ);
    EXPECT_EQ(t.translated_addr, 0u);
    EXPECT_EQ(t.perm, unsigned(IOGUARD_PERM_RW));
    EXPECT_TRUE(d.events().empty());
}

TEST_F(GuestTest, LargePagesOfTwoMegabytesAndOneGigabyte)
{
    map(cr3, 0x40200000, 0x600000, kLeafFlags, 2);
    map(cr3, 0x80000000, 0x40000000, kLeafFlags, 3);
    auto t = d.translate(kDev, 0x40212345, IOGUARD_PERM_READ);
    EXPECT_EQ(t.translated_addr, 0x600000u);
    EXPECT_EQ(t.addr_mask, 0x1fffffu);
    t = d.translate(kDev, 0x80123456, IOGUARD_PERM_READ);
    EXPECT_EQ(t.translated_addr, 0x40000000u);
    EXPECT_EQ(t.addr_mask, 0x3fffffffu);
    EXPECT_TRUE(d.events().empty());
}

TEST_F(GuestTest, FiveLevelTables)
{
    const uint64_t root5 = d.alloc_table();
    m.w64(gcr3_table, root5 | GCR3_VALID);
    const GuestDte dte = guest_dte(gcr3_table, 0, GUEST_PGTABLE_5_LEVEL);
    d.set_dte(kDev, dte.q0, dte.q1, dte.q2);
    d.inv_dte(kDev);
    const uint64_t gva = 0x00ff123456789000ULL;  // uses the level-5 index
    map(root5, gva, 0x777000, kLeafFlags, 1, 5);
    const auto t = d.translate(kDev, gva, IOGUARD_PERM_READ);
    EXPECT_EQ(t.translated_addr, 0x777000u);
    EXPECT_EQ(d.stats().page_walk_levels, 6u);
    // Beyond 57 bits: out of range.
    EXPECT_EQ(d.translate(kDev, 1ULL << 57, IOGUARD_PERM_READ).perm, 0u);
}

TEST_F(GuestTest, NotPresentIsAnIoPageFaultWithGnAndThePasid)
{
    map(cr3, 0x1000, 0x777000);
    EXPECT_EQ(d.translate(kDev, 0x2000, IOGUARD_PERM_READ).perm, 0u);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_IO_FAULT));
    EXPECT_EQ(ev[0].devid, kDev);
    EXPECT_EQ(ev[0].domain, 0u) << "the PASID, in place of the domain";
    EXPECT_EQ(ev[0].address, 0x2000u);
    EXPECT_EQ(ev[0].flags & (EVENT_FLAG_GN | EVENT_FLAG_US | EVENT_FLAG_PR),
              unsigned(EVENT_FLAG_GN | EVENT_FLAG_US));
}

TEST_F(GuestTest, Gcr3EntryNotValidFaults)
{
    map(cr3, 0x1000, 0x777000);
    m.w64(gcr3_table, cr3);     // V=0
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).perm, 0u);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_IO_FAULT));
    EXPECT_TRUE(ev[0].flags & EVENT_FLAG_GN);
}

TEST_F(GuestTest, TwoLevelGcr3TableFindsPasidZero)
{
    const uint64_t level1 = d.alloc_table();
    const uint64_t root = d.alloc_table();
    m.w64(root, level1 | GCR3_VALID);
    m.w64(level1, cr3 | GCR3_VALID);
    const GuestDte dte = guest_dte(root, 1);
    d.set_dte(kDev, dte.q0, dte.q1, dte.q2);
    d.inv_dte(kDev);
    map(cr3, 0x1000, 0x777000);
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).translated_addr,
              0x777000u);
    EXPECT_EQ(d.stats().page_walk_levels, 6u);
}

TEST_F(GuestTest, ReservedEncodingsFaultWithRz)
{
    // PS in a level-4 entry, and a 2 MiB page with address bits below 2 MiB.
    m.w64(cr3, d.alloc_table() | kTableFlags | IOMMU_PAGE_PSE);
    // (Bit 12 of a large page is PAT, not an address bit.)
    map(cr3, 0x8000000000ULL, 0x602000, kLeafFlags, 2);
    for (uint64_t gva : {0x1000ULL, 0x8000000000ULL}) {
        EXPECT_EQ(d.translate(kDev, gva, IOGUARD_PERM_READ).perm, 0u);
        auto ev = d.events();
        ASSERT_EQ(ev.size(), 1u) << std::hex << gva;
        EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_IO_FAULT));
        EXPECT_EQ(ev[0].flags & (EVENT_FLAG_GN | EVENT_FLAG_RZ),
                  unsigned(EVENT_FLAG_GN | EVENT_FLAG_RZ));
    }
    EXPECT_EQ(m.guest_errors.size(), 2u);
}

TEST_F(GuestTest, ReadOnlyPageRefusesWrites)
{
    map(cr3, 0x1000, 0x777000, kLeafFlags & ~IOMMU_PAGE_RW);
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).perm,
              unsigned(IOGUARD_PERM_READ));
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_WRITE).perm, 0u);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].flags & (EVENT_FLAG_GN | EVENT_FLAG_PE | EVENT_FLAG_RW),
              unsigned(EVENT_FLAG_GN | EVENT_FLAG_PE | EVENT_FLAG_RW));
}

TEST_F(GuestTest, SupervisorPagesRefuseRequestsWithoutAPasid)
{
    // U/S clear in the level-3 entry: requests without a PASID are user
    // requests.
    map(cr3, 0x1000, 0x777000, kLeafFlags, 1, 4, kTableFlags);
    const uint64_t l4e = m.r64(cr3);
    const uint64_t l3 = l4e & IOMMU_PAGE_ADDR_MASK;
    m.w64(l3, m.r64(l3) & ~IOMMU_PAGE_USER);
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).perm, 0u);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_TRUE(ev[0].flags & EVENT_FLAG_PE);
}

TEST_F(GuestTest, AccessedOnTheWayAndDirtyOnWrite)
{
    const uint64_t plain = IOMMU_PAGE_PRESENT | IOMMU_PAGE_RW |
                           IOMMU_PAGE_USER;
    const uint64_t leaf = map(cr3, 0x1000, 0x777000, plain, 1, 4, plain);
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).perm,
              unsigned(IOGUARD_PERM_RW));
    EXPECT_TRUE(m.r64(cr3) & IOMMU_PAGE_ACCESS);
    EXPECT_TRUE(m.r64(leaf) & IOMMU_PAGE_ACCESS);
    EXPECT_FALSE(m.r64(leaf) & IOMMU_PAGE_DIRTY);
    // A write through the clean entry the read left in the IOTLB walks
    // again and sets D.
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_WRITE).perm,
              unsigned(IOGUARD_PERM_RW));
    EXPECT_TRUE(m.r64(leaf) & IOMMU_PAGE_DIRTY);
    EXPECT_EQ(d.stats().iotlb_misses, 2u);
    // Now dirty, the next write is a hit.
    d.translate(kDev, 0x1000, IOGUARD_PERM_WRITE);
    EXPECT_EQ(d.stats().iotlb_hits, 1u);
}

TEST_F(GuestTest, RefusedAccessLeavesAccessedAlone)
{
    const uint64_t plain = IOMMU_PAGE_PRESENT | IOMMU_PAGE_USER;
    const uint64_t leaf = map(cr3, 0x1000, 0x777000, plain, 1, 4, plain);
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_WRITE).perm, 0u);
    EXPECT_FALSE(m.r64(leaf) & IOMMU_PAGE_ACCESS);
    EXPECT_FALSE(m.r64(cr3) & IOMMU_PAGE_ACCESS);
}

TEST_F(GuestTest, AWriteTheDteForbidsLeavesDirtyAlone)
{
    // IW=0 in the DTE: the device may not write, whatever the v2 tables
    // say; the tables themselves are still read (IR/IW are the device's).
    GuestDte dte = guest_dte(gcr3_table);
    dte.q0 &= ~(DTE_FLAG_IW | DTE_FLAG_IR);
    d.set_dte(kDev, dte.q0, dte.q1, dte.q2);
    d.inv_dte(kDev);
    const uint64_t plain = IOMMU_PAGE_PRESENT | IOMMU_PAGE_RW |
                           IOMMU_PAGE_USER;
    const uint64_t leaf = map(cr3, 0x1000, 0x777000, plain, 1, 4, plain);
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_WRITE).perm, 0u);
    EXPECT_FALSE(m.r64(leaf) & (IOMMU_PAGE_DIRTY | IOMMU_PAGE_ACCESS));
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].flags & (EVENT_FLAG_GN | EVENT_FLAG_PE),
              unsigned(EVENT_FLAG_GN | EVENT_FLAG_PE));
}

TEST_F(GuestTest, GnInvalidationDropsExactlyItsPages)
{
    const uint64_t leaf1 = map(cr3, 0x1000, 0x777000);
    map(cr3, 0x2000, 0x778000);
    d.translate(kDev, 0x1000, IOGUARD_PERM_READ);
    d.translate(kDev, 0x2000, IOGUARD_PERM_READ);
    m.w64(leaf1, 0x779000 | kLeafFlags);
    // Not invalidated yet: the IOTLB's copy.
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).translated_addr,
              0x777000u);
    // Another PASID's invalidation leaves PASID 0's pages alone.
    inv_guest_pages(1, 0x1000, false);
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).translated_addr,
              0x777000u);
    inv_guest_pages(0, 0x1000, false);
    const uint64_t hits = d.stats().iotlb_hits;
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).translated_addr,
              0x779000u);
    EXPECT_EQ(d.translate(kDev, 0x2000, IOGUARD_PERM_READ).translated_addr,
              0x778000u);
    EXPECT_EQ(d.stats().iotlb_hits, hits + 1) << "0x2000 stayed cached";
    // The host's notifier users hear of PASID 0's page.
    ASSERT_FALSE(m.pages_invalidated.empty());
    EXPECT_EQ(m.pages_invalidated.back(),
              (Machine::PagesInvalidated{kDomain, 0x1000, 0x1fff}));
}

TEST_F(GuestTest, HostInvalidationDropsTheDomainsGuestPages)
{
    const uint64_t leaf = map(cr3, 0x1000, 0x777000);
    d.translate(kDev, 0x1000, IOGUARD_PERM_READ);
    m.w64(leaf, 0x779000 | kLeafFlags);
    d.inv_pages(kDomain, 0x123456000, false);   // GN=0, any address
    EXPECT_TRUE(d.completion_wait());
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).translated_addr,
              0x779000u);
}

TEST_F(GuestTest, AddressesBeyondTheLevelsFault)
{
    // PASID 0: no sign extension; bits above 47 must be 0.
    EXPECT_EQ(d.translate(kDev, 1ULL << 48, IOGUARD_PERM_READ).perm, 0u);
    EXPECT_EQ(d.translate(kDev, 0xffff800000000000ULL, IOGUARD_PERM_READ).perm,
              0u);
    EXPECT_EQ(d.events().size(), 2u);
}

TEST_F(GuestTest, GuestFieldsBeyondWhatIsOfferedAreIllegal)
{
    // GLX 2 (GLXSup is 1), then guest paging mode 2 (reserved).
    for (const GuestDte dte : {guest_dte(gcr3_table, 2),
                               guest_dte(gcr3_table, 0, 2)}) {
        d.set_dte(kDev, dte.q0, dte.q1, dte.q2);
        d.inv_dte(kDev);
        EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).perm, 0u);
        auto ev = d.events();
        ASSERT_EQ(ev.size(), 1u);
        EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_ILL_DEV));
    }
}

TEST_F(GuestTest, Gcr3TableNotInRamIsAPageTableHardwareError)
{
    const GuestDte dte = guest_dte(kRamSize + 0x10000);
    d.set_dte(kDev, dte.q0, dte.q1, dte.q2);
    d.inv_dte(kDev);
    EXPECT_EQ(d.translate(kDev, 0x1000, IOGUARD_PERM_READ).perm, 0u);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_PAGE_TAB_ERR));
    EXPECT_EQ(ev[0].address, kRamSize + 0x10000);
}

// Host tables under the guest's (a hypervisor's guest with its own
// IOMMU): every guest table address and the final guest physical page
// go through them.
TEST_F(GuestTest, HostTablesTranslateTheGuestTablesAndTheirOutput)
{
    constexpr uint64_t kGuestRamOffset = 0x800000;  // GPA x is SPA x + this
    const uint64_t host_root = d.alloc_table();
    // The guest's tables, built at system addresses and mapped by the
    // host at gpa = spa - offset.
    auto host_map = [&](uint64_t gpa) {
        d.map(host_root, 3, gpa, gpa + kGuestRamOffset, true, true);
    };
    const uint64_t gcr3_spa = d.alloc_table();
    const uint64_t l4 = d.alloc_table(), l3 = d.alloc_table(),
                   l2 = d.alloc_table(), l1 = d.alloc_table();
    auto gpa_of = [&](uint64_t spa) { return spa - kGuestRamOffset; };
    for (uint64_t t : {gcr3_spa, l4, l3, l2, l1}) {
        host_map(gpa_of(t));
    }
    m.w64(gcr3_spa, gpa_of(l4) | GCR3_VALID);
    m.w64(l4, gpa_of(l3) | kTableFlags);
    m.w64(l3, gpa_of(l2) | kTableFlags);
    m.w64(l2, gpa_of(l1) | kTableFlags);
    m.w64(l1 + 8, 0x100000 | kLeafFlags);     // gva 0x1000 -> gpa 0x100000
    host_map(0x100000);
    const GuestDte dte = guest_dte(gpa_of(gcr3_spa), 0, GUEST_PGTABLE_4_LEVEL,
                                   host_root, 3);
    d.set_dte(kDev, dte.q0, dte.q1, dte.q2);
    d.inv_dte(kDev);
    const auto t = d.translate(kDev, 0x1234, IOGUARD_PERM_READ);
    EXPECT_EQ(t.translated_addr, 0x100000 + kGuestRamOffset);
    EXPECT_EQ(t.addr_mask, 0xfffu);
    EXPECT_TRUE(d.events().empty());

    // A guest physical page the host does not map: a host fault (GN=0)
    // at that guest physical address.
    m.w64(l1 + 16, 0x200000 | kLeafFlags);
    EXPECT_EQ(d.translate(kDev, 0x2000, IOGUARD_PERM_READ).perm, 0u);
    auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_IO_FAULT));
    EXPECT_EQ(ev[0].address, 0x200000u);
    EXPECT_EQ(ev[0].domain, kDomain);
    EXPECT_FALSE(ev[0].flags & EVENT_FLAG_GN);
}

TEST_F(GuestTest, TheMonitorSeesGuestTranslatedDmaAndItsPages)
{
    // Read-only, and no Accessed bits yet.
    const uint64_t plain = IOMMU_PAGE_PRESENT | IOMMU_PAGE_USER;
    const uint64_t leaf = map(cr3, 0x1000, 0x777000, plain, 1, 4,
                              plain | IOMMU_PAGE_RW);
    IoguardDeviceInfo info;
    ioguard_iommu_read_device(m.iommu, kDev, &info);
    EXPECT_EQ(info.dma, unsigned(IOGUARD_DMA_GUEST_TRANSLATED));
    IoguardMapping page;
    ASSERT_TRUE(ioguard_iommu_lookup_page(m.iommu, kDev, 0x1abc, &page));
    EXPECT_EQ(page.iova, 0x1000u);
    EXPECT_EQ(page.last, 0x1fffu);
    EXPECT_EQ(page.target, 0x777000u);
    EXPECT_EQ(page.perm, unsigned(IOGUARD_PERM_READ));
    EXPECT_FALSE(ioguard_iommu_lookup_page(m.iommu, kDev, 0x2000, &page));
    // A look moves no data: the Accessed bits stay clear.
    EXPECT_FALSE(m.r64(cr3) & IOMMU_PAGE_ACCESS);
    EXPECT_FALSE(m.r64(leaf) & IOMMU_PAGE_ACCESS);
}

} // namespace

// ATS translation requests with a PASID prefix (SVA): each PASID's own
// tables, U/S as the prefix asks, exact GN invalidation, pages the tables
// do not give refused without an event (the device's page request
// follows), and refusal without guest tables.
struct PasidTest : GuestPasidTest {
    using GuestPasidTest::GuestPasidTest;
    IoguardTranslation translate(uint32_t pasid, uint64_t gva, unsigned perm,
                                 bool privileged = false)
    {
        IoguardTranslation t;
        ioguard_iommu_translate_pasid(m.iommu, kDev, pasid, privileged, gva,
                                      perm, &t);
        m.now += 10000000;
        return t;
    }
};

TEST_F(PasidTest, EachPasidHasItsOwnTables)
{
    // A process's address (sign-extended, above the canonical hole) in
    // PASID 5; the same address in PASID 0 is not mapped.
    const uint64_t gva = 0xffff800000042000ULL;
    map(cr3_of_pasid, gva, 0x555000);
    const auto t = translate(kPasid, gva | 0x10, IOGUARD_PERM_WRITE);
    EXPECT_EQ(t.perm, unsigned(IOGUARD_PERM_RW));
    EXPECT_EQ(t.translated_addr, 0x555000u);
    map(cr3, 0x42000, 0x666000);
    EXPECT_EQ(translate(0, 0x42000, IOGUARD_PERM_READ).translated_addr,
              0x666000u);
    EXPECT_EQ(translate(kPasid, 0x42000, IOGUARD_PERM_READ).perm, 0u);
    EXPECT_TRUE(d.events().empty()) << "not present: no event";
    EXPECT_EQ(d.stats().faults, 1u);
    // Malformed tables are events, with GN and the PASID in place of the
    // domain.
    m.w64(cr3_of_pasid + 8 * 511, 0x1000 | kTableFlags | IOMMU_PAGE_PSE);
    EXPECT_EQ(translate(kPasid, 0xffffff8000000000ULL, IOGUARD_PERM_READ).perm,
              0u);
    const auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_IO_FAULT));
    EXPECT_EQ(ev[0].domain, kPasid) << "the PASID, in place of the domain";
    EXPECT_EQ(ev[0].flags & (EVENT_FLAG_GN | EVENT_FLAG_US | EVENT_FLAG_RZ),
              unsigned(EVENT_FLAG_GN | EVENT_FLAG_US | EVENT_FLAG_RZ));
    // The fault record says PASID, not domain.
    ASSERT_FALSE(m.records_seen.empty());
    EXPECT_EQ(m.records_seen.back().pasid, int32_t(kPasid));
    EXPECT_EQ(m.records_seen.back().domain, -1);
}

// A supervisor request may use a page U/S keeps from user requests; what
// it leaves in the IOTLB must not let a user request of the same PASID in.
TEST_F(PasidTest, SupervisorEntriesDoNotServeUserRequests)
{
    map(cr3_of_pasid, 0x9000, 0x999000, kLeafFlags & ~IOMMU_PAGE_USER);
    EXPECT_EQ(translate(kPasid, 0x9000, IOGUARD_PERM_READ, true).perm,
              unsigned(IOGUARD_PERM_RW));
    EXPECT_EQ(translate(kPasid, 0x9000, IOGUARD_PERM_READ, false).perm, 0u);
    EXPECT_TRUE(d.events().empty()) << "a page it may not have: no event";
    // Such a page is not kept in the IOTLB: a supervisor request walks
    // again (and is granted), the user request was not served by it.
    const uint64_t walks = d.stats().page_walks;
    EXPECT_EQ(translate(kPasid, 0x9000, IOGUARD_PERM_READ, true).perm,
              unsigned(IOGUARD_PERM_RW));
    EXPECT_EQ(d.stats().page_walks, walks + 1);
    EXPECT_EQ(d.stats().iotlb_hits, 0u);
}

TEST_F(PasidTest, GnInvalidationOfOnePasidLeavesTheOther)
{
    constexpr uint32_t kOther = 6;
    const uint64_t other_cr3 = d.alloc_table();
    m.w64(gcr3_table + kOther * 8, other_cr3 | GCR3_VALID);
    const uint64_t leaf5 = map(cr3_of_pasid, 0x3000, 0x333000);
    const uint64_t leaf6 = map(other_cr3, 0x3000, 0x444000);
    EXPECT_EQ(translate(kPasid, 0x3000, IOGUARD_PERM_READ).translated_addr,
              0x333000u);
    EXPECT_EQ(translate(kOther, 0x3000, IOGUARD_PERM_READ).translated_addr,
              0x444000u);
    // Both remapped; only PASID 5 invalidated: PASID 6 keeps its cached
    // (stale) page until it is invalidated too.
    m.w64(leaf5, 0x335000 | kLeafFlags);
    m.w64(leaf6, 0x445000 | kLeafFlags);
    inv_guest_pages(kPasid, 0x3000, false);
    EXPECT_EQ(translate(kPasid, 0x3000, IOGUARD_PERM_READ).translated_addr,
              0x335000u);
    EXPECT_EQ(translate(kOther, 0x3000, IOGUARD_PERM_READ).translated_addr,
              0x444000u);
    inv_guest_pages(kOther, 0x3000, false);
    EXPECT_EQ(translate(kOther, 0x3000, IOGUARD_PERM_READ).translated_addr,
              0x445000u);
}

TEST_F(PasidTest, WithoutGuestTablesAPasidIsAnInvalidDeviceRequest)
{
    d.set_dte(kDev, DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_IR | DTE_FLAG_IW);
    d.inv_dte(kDev);
    EXPECT_EQ(translate(kPasid, 0x1000, IOGUARD_PERM_READ).perm, 0u);
    // Beyond 16 bits, even with guest tables.
    const GuestDte dte = guest_dte(gcr3_table);
    d.set_dte(kDev, dte.q0, dte.q1, dte.q2);
    d.inv_dte(kDev);
    EXPECT_EQ(translate(0x10005, 0x2000, IOGUARD_PERM_WRITE).perm, 0u);
    const auto ev = d.events();
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_INV_DEV_REQ));
    EXPECT_EQ(ev[0].domain, kPasid);
    EXPECT_EQ(ev[0].address, 0x1000u);
    EXPECT_EQ(ev[1].type, unsigned(EVENT_TYPE_INV_DEV_REQ));
    EXPECT_EQ(ev[1].flags & EVENT_FLAG_RW, unsigned(EVENT_FLAG_RW));
    ASSERT_EQ(m.records_seen.size(), 2u);
    EXPECT_EQ(m.records_seen[0].reason,
              unsigned(IOGUARD_FAULT_INVALID_DEVICE_REQUEST));
    EXPECT_EQ(m.records_seen[0].pasid, int32_t(kPasid));
    EXPECT_EQ(m.records_seen[0].domain, -1);
    EXPECT_EQ(m.records_seen[1].pasid, 0x10005) << "all 20 bits";
    EXPECT_FALSE(m.guest_errors.empty());
}

TEST_F(PasidTest, IommuOffPassesRequestsWithAPasid)
{
    m.mmio_write(MMIO_CONTROL_OFFSET, 0);
    const auto t = translate(kPasid, 0x1234000, IOGUARD_PERM_WRITE);
    // Identity, in 1 GiB pieces.
    EXPECT_EQ(t.translated_addr | (0x1234000 & t.addr_mask), 0x1234000u);
    EXPECT_EQ(t.perm, unsigned(IOGUARD_PERM_RW));
}

// What the monitor lists of a GCR3 table: the valid entries, in PASID
// order, reserved ones marked; through a second level too.
TEST_F(PasidTest, TheMonitorListsTheGcr3Table)
{
    auto list = [&](unsigned max) {
        std::vector<IoguardPasidEntry> out;
        EXPECT_TRUE(ioguard_iommu_for_each_pasid(
            m.iommu, kDev, max,
            [](const IoguardPasidEntry *e, void *o) {
                static_cast<std::vector<IoguardPasidEntry> *>(o)->push_back(*e);
            },
            &out));
        return out;
    };
    m.w64(gcr3_table + 9 * 8, 0x7000 | GCR3_VALID | 1ULL << 60);
    auto pasids = list(64);
    ASSERT_EQ(pasids.size(), 3u);
    EXPECT_EQ(pasids[0].pasid, 0u);
    EXPECT_EQ(pasids[0].cr3, cr3);
    EXPECT_EQ(pasids[1].pasid, kPasid);
    EXPECT_EQ(pasids[1].cr3, cr3_of_pasid);
    EXPECT_FALSE(pasids[1].reserved);
    EXPECT_EQ(pasids[2].pasid, 9u);
    EXPECT_TRUE(pasids[2].reserved);
    EXPECT_EQ(list(2).size(), 2u) << "at most max";

    // Two levels (GLX=1): PASID 600 is entry 88 of the table that entry 1
    // of the root names.
    const uint64_t root = d.alloc_table(), second = d.alloc_table();
    m.w64(root + 1 * 8, second | GCR3_VALID);
    m.w64(second + 88 * 8, 0x9000 | GCR3_VALID);
    const GuestDte dte = guest_dte(root, 1);
    d.set_dte(kDev, dte.q0, dte.q1, dte.q2);
    pasids = list(64);
    ASSERT_EQ(pasids.size(), 1u);
    EXPECT_EQ(pasids[0].pasid, 600u);
    EXPECT_EQ(pasids[0].cr3, 0x9000u);
    IoguardDeviceInfo info;
    ioguard_iommu_read_device(m.iommu, kDev, &info);
    EXPECT_TRUE(info.guest_valid);
    EXPECT_EQ(info.gcr3_levels, 1u);
    EXPECT_EQ(info.gcr3_table_root, root);
    EXPECT_EQ(info.guest_paging_levels, 4u);
}

// The DMA verifier and a device's own translation of a PASID's page (ATS
// with a PASID): a use after an INVALIDATE_IOTLB_PAGES covered it, while
// the PASID's tables no longer map it so, is a finding that names the
// PASID; a supervisor translation of a supervisor page that still holds
// is none.
IoguardConfig verifier_config()
{
    IoguardConfig c = guest_config();
    c.verifier = true;
    return c;
}

struct PasidVerifierTest : PasidTest {
    PasidVerifierTest() : PasidTest(verifier_config()) {}
};

TEST_F(PasidVerifierTest, AtsUseAfterItsInvalidationNamesThePasid)
{
    map(cr3_of_pasid, 0x42000, 0x555000);
    map(cr3_of_pasid, 0x43000, 0x556000, kLeafFlags & ~IOMMU_PAGE_USER);
    const uint64_t kept = ioguard_iommu_device_iotlb_generation(m.iommu);
    d.inv_iotlb_page(kDev, 0x42000);
    d.inv_iotlb_page(kDev, 0x43000);
    ASSERT_TRUE(d.completion_wait());
    // Still mapped so (as supervisor, for the supervisor page): harmless.
    ioguard_iommu_ats_used(m.iommu, kDev, kPasid, false, 0x42000, 0x555000,
                           IOGUARD_PERM_READ, kept);
    ioguard_iommu_ats_used(m.iommu, kDev, kPasid, true, 0x43000, 0x556000,
                           IOGUARD_PERM_READ, kept);
    std::vector<IoguardFaultRecord> r(16);
    uint64_t lost;
    EXPECT_EQ(ioguard_iommu_get_fault_records(m.iommu, r.data(), r.size(),
                                              &lost), 0u);
    // Unmapped from PASID 5 (PASID 0 maps the address: not its business).
    map(cr3, 0x42000, 0x555000);
    m.w64(map(cr3_of_pasid, 0x42000, 0x555000), 0);
    ioguard_iommu_ats_used(m.iommu, kDev, kPasid, false, 0x42010, 0x555010,
                           IOGUARD_PERM_WRITE, kept);
    ASSERT_EQ(ioguard_iommu_get_fault_records(m.iommu, r.data(), r.size(),
                                              &lost), 1u);
    EXPECT_STREQ(ioguard_fault_reason_name(r[0].reason),
                 "ats-use-after-invalidation");
    EXPECT_EQ(r[0].pasid, int32_t(kPasid));
    EXPECT_EQ(r[0].address, 0x42010u);
    EXPECT_FALSE(r[0].now_mapped);
}

// site=translate rules apply to ATS translation requests with a PASID
// too: an injected fault is an IO_PAGE_FAULT with GN and the PASID, and
// action=stale serves the PASID's own earlier translation.
IoguardConfig with_rules(IoguardFaults *f)
{
    IoguardConfig c = guest_config();
    c.faults = f;
    return c;
}

struct PasidFaultTest : FaultRules, PasidTest {
    PasidFaultTest() : PasidTest(with_rules(f)) {}
    void add(const char *rule) { FaultRules::add(m.iommu, m.now, rule); }
};

TEST_F(PasidFaultTest, AnInjectedFaultNamesThePasid)
{
    map(cr3_of_pasid, 0x42000, 0x555000);
    add("site=translate,requester=00:02.0,when=once,action=fault");
    EXPECT_EQ(translate(kPasid, 0x42010, IOGUARD_PERM_WRITE).perm, 0u);
    const auto ev = d.events();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, unsigned(EVENT_TYPE_IO_FAULT));
    EXPECT_EQ(ev[0].domain, int(kPasid));
    EXPECT_EQ(ev[0].flags & (EVENT_FLAG_GN | EVENT_FLAG_US | EVENT_FLAG_RW),
              unsigned(EVENT_FLAG_GN | EVENT_FLAG_US | EVENT_FLAG_RW));
    ASSERT_FALSE(m.records_seen.empty());
    EXPECT_STREQ(ioguard_fault_reason_name(m.records_seen.back().reason),
                 "injected");
    EXPECT_EQ(m.records_seen.back().pasid, int32_t(kPasid));
    // Spent: the truth again.
    EXPECT_EQ(translate(kPasid, 0x42010, IOGUARD_PERM_WRITE).translated_addr,
              0x555000u);
}

TEST_F(PasidFaultTest, StaleServesThePasidsOwnEarlierTranslation)
{
    map(cr3, 0x42000, 0x666000);            // PASID 0's page at that address
    map(cr3_of_pasid, 0x42000, 0x555000);
    add("site=translate,when=nth:3,action=stale");
    EXPECT_EQ(translate(0, 0x42000, IOGUARD_PERM_READ).translated_addr,
              0x666000u);
    EXPECT_EQ(translate(kPasid, 0x42000, IOGUARD_PERM_READ).translated_addr,
              0x555000u);
    m.w64(map(cr3_of_pasid, 0x42000, 0x555000), 0);
    inv_guest_pages(kPasid, 0x42000, false);
    const IoguardTranslation stale =
        translate(kPasid, 0x42000, IOGUARD_PERM_READ);
    EXPECT_EQ(stale.translated_addr, 0x555000u);
    EXPECT_EQ(stale.perm, unsigned(IOGUARD_PERM_RW));
    EXPECT_EQ(translate(kPasid, 0x42000, IOGUARD_PERM_READ).perm, 0u);
}
