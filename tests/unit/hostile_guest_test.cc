// A guest that writes garbage everywhere: random register writes of every
// width, random bytes in the tables, random DMA and interrupts. The engine
// must neither crash nor loop, and must keep its registers architected.
#include <gtest/gtest.h>

#include <random>

#include "fake_guest.hh"

using namespace ioguard_test;

namespace {

constexpr uint64_t kRegisters[] = {
    MMIO_DEV_TABLE_OFFSET, MMIO_CMD_BUF_OFFSET,   MMIO_EVT_BUF_OFFSET,
    MMIO_CONTROL_OFFSET,   MMIO_EXCL_BASE_OFFSET, MMIO_EXT_FEATURES,
    MMIO_CMD_HEAD_OFFSET,  MMIO_CMD_TAIL_OFFSET,  MMIO_EVT_HEAD_OFFSET,
    MMIO_EVT_TAIL_OFFSET,  MMIO_STATUS_OFFSET,    MMIO_INTCAPXT_EVT_OFFSET,
    IOGUARD_MMIO_CONTROL,  MMIO_PPR_LOG_OFFSET,   MMIO_PPR_HEAD_OFFSET,
    MMIO_PPR_TAIL_OFFSET,  MMIO_INTCAPXT_PPR_OFFSET,
};

TEST(HostileGuest, RandomRegistersTablesAndDmaForManySeeds)
{
    IoguardStats total{};
    unsigned page_requests_logged = 0;
    for (uint32_t seed = 1; seed <= 20; seed++) {
        std::mt19937_64 rng(seed);
        // The prefetcher on, so that random PTEs with the STREAMING bit
        // (and STREAMING_EN written at random) drive it too.
        IoguardConfig config = test_config();
        config.prefetch_depth = 64;
        config.latency_model = true;
        // Every other seed with guest translation and page requests.
        config.guest_translation = seed % 2 == 0;
        Machine m(config);
        // Words that look like table entries and commands, and garbage:
        // the tables and rings the registers point at are made of them.
        auto plausible = [&]() -> uint64_t {
            const uint64_t page = rng() & 0x3ff000;
            switch (rng() % 5) {
            case 4:
                return 0;
            case 0:     // page-table entry: present, any NextLevel, RW
                return page | IOMMU_PTE_PR | (rng() % 8) << 9 |
                       IOMMU_PTE_IR | IOMMU_PTE_IW;
            case 1:     // DTE q0: valid, any Mode
                return page | DTE_FLAG_V | DTE_FLAG_TV | (rng() % 8) << 9 |
                       DTE_FLAG_IR | DTE_FLAG_IW;
            case 2:     // command: opcode 1..8 in dw1 bits 31:28
                return (1 + rng() % 8) << 60 | (rng() & 0xfffffff0ffffffULL);
            default:
                return rng();
            }
        };
        for (uint64_t a = 0; a < (4u << 20); a += 8) {
            m.w64(a, plausible());
        }
        // Whole device table entries, translated or not, at random slots.
        auto write_dte = [&] {
            const uint64_t a = rng() % (4u << 20) & ~31ULL;
            m.w64(a, (rng() & 0x3ff000) | DTE_FLAG_V | DTE_FLAG_TV |
                         (rng() % 7) << 9 | DTE_FLAG_IR | DTE_FLAG_IW |
                         (rng() % 2 ? DTE_FLAG_PPR : 0));
            m.w64(a + 8, rng() & 0xffff);
            m.w64(a + 16, (rng() % 2) ? 0 : (rng() & 0x3fffc0) | DTE_IRQ_IV |
                                               (rng() % 12) << 1 |
                                               (rng() % 3) << 60);
            m.w64(a + 24, 0);
        };
        for (int i = 0; i < 20000; i++) {
            write_dte();
        }
        auto addr = [&] {
            // Mostly RAM, sometimes beyond it, sometimes unaligned.
            const uint64_t r = rng();
            return (r & 1) ? (r & 0x3ff000) : (r & 0xfffffffff0ULL);
        };
        for (int step = 0; step < 3000; step++) {
            const unsigned size = 1u << (rng() % 4);
            switch (rng() % 7) {
            case 0: {
                const uint64_t reg = kRegisters[rng() % std::size(kRegisters)];
                uint64_t v = rng();
                if (reg == MMIO_CONTROL_OFFSET) {
                    // Mostly on, with the buffer and log sometimes toggled
                    // (which restarts them).
                    v |= 1ULL << CONTROL_IOMMU_EN;
                    if (rng() % 4) {
                        v |= 1ULL << CONTROL_CMDBUF_EN |
                             1ULL << CONTROL_EVT_LOG_EN;
                    }
                    if (rng() % 2) {
                        v |= 1ULL << CONTROL_PPR_EN |
                             1ULL << CONTROL_PPRLOG_EN;
                    }
                } else if (reg != MMIO_CMD_TAIL_OFFSET &&
                           reg != MMIO_STATUS_OFFSET &&
                           reg != MMIO_PPR_HEAD_OFFSET &&
                           reg != MMIO_PPR_TAIL_OFFSET) {
                    // A base: an address, a length, and random low bits.
                    v = (addr() & ~0xfffULL) | (v & 0xfff) | (v >> 60) << 56;
                }
                m.mmio_write(reg + (rng() % 8 / size) * size, v, size);
                break;
            }
            case 1:
                m.mmio_read(rng() % IOGUARD_MMIO_SIZE, size);
                break;
            case 2:
                if (rng() % 2) {
                    write_dte();
                } else {
                    m.w64(rng() % (4u << 20) & ~7ULL, plausible());
                }
                break;
            case 3: {
                IoguardTranslation t;
                const uint64_t iova = (rng() % 2) ? rng() : rng() & 0xffffffff;
                ioguard_iommu_translate(m.iommu, rng() & 0x3ff, iova,
                                        1 + rng() % 2, &t);
                if (t.perm != IOGUARD_PERM_NONE) {
                    // What is granted is a whole, aligned page.
                    ASSERT_EQ(t.translated_addr & t.addr_mask, 0u);
                    ASSERT_EQ(t.addr_mask & (t.addr_mask + 1), 0u);
                }
                break;
            }
            case 4: {
                IoguardMsi in{0xfee00000 | (rng() & 0xffffc), uint32_t(rng())},
                    out;
                ioguard_iommu_remap_msi(m.iommu, rng() & 0x3ff, &in, &out);
                break;
            }
            case 5:
                m.now += rng() % 2000000;
                break;
            case 6: {
                IoguardPageRequest r{};
                r.devid = rng() & 0x3ff;
                r.pasid_valid = rng() % 2;
                r.pasid = uint32_t(rng()) >> (rng() % 32);
                r.address = rng();
                r.perm = rng() % 4;
                r.exec = rng() % 2;
                r.privileged = rng() % 2;
                r.group = uint16_t(rng());
                r.last = rng() % 2;
                const unsigned outcome =
                    ioguard_iommu_page_request(m.iommu, &r);
                ASSERT_LE(outcome, unsigned(IOGUARD_PAGE_REQUEST_FAILED));
                page_requests_logged += outcome == IOGUARD_PAGE_REQUEST_LOGGED;
                break;
            }
            }
        }
        // Head and tail stay pure offsets inside their rings.
        EXPECT_EQ(m.mmio_read(MMIO_CMD_HEAD_OFFSET) & ~0x7fff0ULL, 0u) << seed;
        EXPECT_EQ(m.mmio_read(MMIO_EVT_TAIL_OFFSET) & ~0x7fff0ULL, 0u) << seed;
        EXPECT_EQ(m.mmio_read(MMIO_PPR_TAIL_OFFSET) & ~0x7fff0ULL, 0u) << seed;
        EXPECT_EQ(m.mmio_read(MMIO_PPR_HEAD_OFFSET) & ~0x7fff0ULL, 0u) << seed;
        EXPECT_EQ(m.mmio_read(MMIO_EXT_FEATURES), ioguard_iommu_efr(m.iommu));
        IoguardStats s;
        ioguard_iommu_get_stats(m.iommu, &s);
        total.commands += s.commands;
        total.events_logged += s.events_logged;
        total.page_walks += s.page_walks;
        total.faults += s.faults;
        total.interrupts_blocked += s.interrupts_blocked;
    }
    // The garbage reached every part of the engine.
    EXPECT_GT(total.commands, 10u);
    EXPECT_GT(total.events_logged, 100u);
    EXPECT_GT(total.page_walks, 100u);
    EXPECT_GT(total.faults, 100u);
    EXPECT_GT(total.interrupts_blocked, 10u);
    EXPECT_GT(page_requests_logged, 10u);
}

} // namespace
