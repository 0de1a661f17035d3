// A device whose DTE points at guest (v2) tables: PASID 0's, as Linux's
// amd_iommu=pgtbl_v2 sets them up. Shared by the guest translation and
// the monitor's tests.
#pragma once

#include <gtest/gtest.h>

#include "fake_guest.hh"

namespace ioguard_test {

constexpr uint16_t kDev = 0x0010;
constexpr uint16_t kDomain = 9;
constexpr uint64_t kControlGt = 1ULL << CONTROL_GT_EN;
constexpr uint64_t kTableFlags = Driver::kV2TableFlags;
constexpr uint64_t kLeafFlags = Driver::kV2LeafFlags;

inline IoguardConfig guest_config()
{
    IoguardConfig c = test_config();
    c.guest_translation = true;
    return c;
}

using GuestDte = Driver::GuestDte;
inline GuestDte guest_dte(uint64_t gcr3_table, unsigned glx = 0,
                          unsigned paging = GUEST_PGTABLE_4_LEVEL,
                          uint64_t host_root = 0, unsigned host_mode = 0)
{
    return Driver::guest_dte(gcr3_table, kDomain, glx, paging, host_root,
                             host_mode);
}

struct GuestTest : ::testing::Test {
    explicit GuestTest(IoguardConfig config = guest_config()) : m{config} {}

    Machine m;
    Driver d{m};
    uint64_t gcr3_table = 0;
    uint64_t cr3 = 0;

    void SetUp() override
    {
        d.enable(kControlGt);
        gcr3_table = d.alloc_table();
        cr3 = d.alloc_table();
        m.w64(gcr3_table, cr3 | GCR3_VALID);    // PASID 0
        const GuestDte dte = guest_dte(gcr3_table);
        d.set_dte(kDev, dte.q0, dte.q1, dte.q2);
    }

    uint64_t map(uint64_t root, uint64_t gva, uint64_t pa,
                 uint64_t leaf_flags = kLeafFlags, unsigned leaf_level = 1,
                 unsigned levels = 4, uint64_t table_flags = kTableFlags)
    {
        return d.map_v2(root, gva, pa, leaf_flags, leaf_level, levels,
                        table_flags);
    }

    void inv_guest_pages(uint32_t pasid, uint64_t address, bool s)
    {
        d.queue(pasid, uint32_t(CMD_INV_IOMMU_PAGES) << 28 | kDomain,
                uint32_t(address & ~0xfffULL) | (s ? 1 : 0) |
                    CMD_INV_IOMMU_PAGES_PDE_MASK | CMD_INV_IOMMU_PAGES_GN_MASK,
                uint32_t(address >> 32));
        EXPECT_TRUE(d.completion_wait());
    }
};

// The same, and PASID 5's own (empty) tables in the GCR3 table.
struct GuestPasidTest : GuestTest {
    using GuestTest::GuestTest;
    static constexpr uint32_t kPasid = 5;
    uint64_t cr3_of_pasid = 0;

    void SetUp() override
    {
        GuestTest::SetUp();
        cr3_of_pasid = d.alloc_table();
        m.w64(gcr3_table + kPasid * 8, cr3_of_pasid | GCR3_VALID);
    }
};

} // namespace ioguard_test
