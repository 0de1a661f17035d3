// The guest the engine fuzz targets run against: a small RAM whose words
// the input chooses, the host callbacks counting what the engine did (so
// that a target can bound the work of one call), and helpers that turn
// input bytes into values shaped like table entries and commands, so that
// the fuzzer reaches deep states quickly.
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "hw/ioguard/amd-vi-regs.h"
#include "hw/ioguard/iommu-engine.h"

namespace ioguard_fuzz {

// 256 KiB of RAM at guest-physical 0; everything above is "not RAM" (MMIO
// or nothing), which the engine must turn into hardware-error events.
constexpr uint64_t kRamSize = 256 << 10;
constexpr uint64_t kRamPages = kRamSize >> 12;

// Where the fixed-layout targets put the IOMMU's structures.
constexpr uint64_t kDevTable = 0x0000;      // 8 KiB: devids 0..255
constexpr uint64_t kDevTableSizeField = 1;  // (8 KiB / 4 KiB) - 1
constexpr uint64_t kCmdBuf = 0x2000;        // 4 KiB: 256 commands
constexpr uint64_t kEventLog = 0x3000;      // 4 KiB: 256 events
constexpr unsigned kDevids = 256;

#define FUZZ_CHECK(cond, ...)                                               \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "invariant broken: %s: ", #cond);               \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
            abort();                                                        \
        }                                                                   \
    } while (0)

struct FuzzMachine {
    // One RAM for all runs, cleared for each: allocating 256 KiB per run
    // would make the kernel's page faults most of the fuzzing time.
    static uint8_t *zeroed_ram()
    {
        static std::vector<uint8_t> ram(kRamSize);
        memset(ram.data(), 0, ram.size());
        return ram.data();
    }
    uint8_t *ram = zeroed_ram();
    IoguardIommu *iommu = nullptr;
    // What the engine did, for the work bounds.
    uint64_t ram_reads = 0;
    uint64_t ram_writes = 0;
    uint64_t commands = 0;
    uint64_t guest_errors = 0;
    uint64_t now = 0;
    // COMPLETE_PPR_REQUEST's answers to devices.
    struct PageResponse {
        uint16_t devid;
        bool pasid_valid;
        uint32_t pasid;
        uint16_t group;
        unsigned code;
    };
    std::vector<PageResponse> page_responses;

    explicit FuzzMachine(const IoguardConfig &config)
    {
        static const IoguardHostOps ops = {
            read_ram, write_ram, [](void *) {},
            [](void *, uint64_t, uint32_t) {},
            [](void *o, const char *) {
                static_cast<FuzzMachine *>(o)->guest_errors++;
            },
            [](void *, int) {}, [](void *, int) {},
            [](void *o) { return static_cast<FuzzMachine *>(o)->now; },
            [](void *o, const uint32_t *, uint64_t) {
                static_cast<FuzzMachine *>(o)->commands++;
            },
            nullptr,    // fault_recorded
            nullptr,    // wake_at
            nullptr,    // iommu_pages_invalidated
            nullptr,    // device_iotlb_invalidated
            [](void *o, uint16_t devid, bool pasid_valid, uint32_t pasid,
               uint16_t group, unsigned code) {
                static_cast<FuzzMachine *>(o)->page_responses.push_back(
                    {devid, pasid_valid, pasid, group, code});
            },
        };
        iommu = ioguard_iommu_new(&ops, this, &config);
    }
    ~FuzzMachine() { ioguard_iommu_free(iommu); }
    FuzzMachine(const FuzzMachine &) = delete;
    FuzzMachine &operator=(const FuzzMachine &) = delete;

    static bool read_ram(void *o, uint64_t addr, void *buf, uint64_t len)
    {
        auto *m = static_cast<FuzzMachine *>(o);
        m->ram_reads++;
        if (addr >= kRamSize || len > kRamSize - addr) {
            return false;
        }
        memcpy(buf, m->ram + addr, len);
        return true;
    }
    static bool write_ram(void *o, uint64_t addr, const void *buf,
                          uint64_t len)
    {
        auto *m = static_cast<FuzzMachine *>(o);
        m->ram_writes++;
        if (addr >= kRamSize || len > kRamSize - addr) {
            return false;
        }
        memcpy(m->ram + addr, buf, len);
        return true;
    }

    uint64_t r64(uint64_t addr) const
    {
        uint64_t v = 0;
        if (addr + 8 <= kRamSize) {
            memcpy(&v, ram + addr, 8);
        }
        return v;
    }
    void w64(uint64_t addr, uint64_t v)
    {
        if (addr + 8 <= kRamSize) {
            memcpy(ram + addr, &v, 8);
        }
    }
    void mmio_write(uint64_t offset, uint64_t value, unsigned size = 8)
    {
        ioguard_iommu_mmio_write(iommu, offset, value, size);
    }
    uint64_t mmio_read(uint64_t offset, unsigned size = 8)
    {
        return ioguard_iommu_mmio_read(iommu, offset, size);
    }

    // The standard layout: device table, command buffer and event log at
    // the fixed places above, the IOMMU, event log and command buffer on.
    void enable(uint64_t extra_control = 0)
    {
        mmio_write(MMIO_DEV_TABLE_OFFSET, kDevTable | kDevTableSizeField);
        mmio_write(MMIO_CMD_BUF_OFFSET, kCmdBuf | (8ULL << 56));
        mmio_write(MMIO_EVT_BUF_OFFSET, kEventLog | (8ULL << 56));
        mmio_write(MMIO_CONTROL_OFFSET,
                   (1ULL << CONTROL_IOMMU_EN) | (1ULL << CONTROL_EVT_LOG_EN) |
                       (1ULL << CONTROL_CMDBUF_EN) | extra_control);
    }

    // Appends a command at the tail of the standard command buffer and
    // moves the tail, which runs it.
    void run_command(const uint32_t cmd[4])
    {
        const uint64_t tail = mmio_read(MMIO_CMD_TAIL_OFFSET) & 0x7fff0;
        for (int i = 0; i < 4; i++) {
            memcpy(ram + kCmdBuf + (tail % 4096) + 4 * i, &cmd[i], 4);
        }
        mmio_write(MMIO_CMD_TAIL_OFFSET, (tail + 16) % 4096);
    }
};

// A configuration chosen by the input: every feature the engine has.
inline IoguardConfig fuzz_config(FuzzedDataProvider &in)
{
    IoguardConfig c{};
    c.intremap = in.ConsumeBool();
    c.ga = in.ConsumeBool();
    c.xtsup = in.ConsumeBool();
    c.stats = in.ConsumeBool();
    c.fault_records = in.ConsumeIntegralInRange<unsigned>(0, 8);
    c.verifier = in.ConsumeBool();
    c.prefetch_depth = in.ConsumeBool()
                           ? in.ConsumeIntegralInRange<unsigned>(
                                 1, IOGUARD_PREFETCH_DEPTH_MAX)
                           : 0;
    c.latency_model = in.ConsumeBool();
    c.round_trip_ns = 1000;
    c.walk_read_ns = 100;
    return c;
}

// A page of RAM, or now and then an address that is not RAM.
inline uint64_t fuzz_page(FuzzedDataProvider &in)
{
    if (in.ConsumeIntegralInRange(0, 15) == 0) {
        return in.ConsumeIntegral<uint64_t>() & IOMMU_PTE_ADDR_MASK;
    }
    return in.ConsumeIntegralInRange<uint64_t>(0, kRamPages - 1) << 12;
}

// A word shaped like a page-table entry, a DTE's first quadword, a command
// or nothing in particular.
inline uint64_t fuzz_word(FuzzedDataProvider &in)
{
    switch (in.ConsumeIntegralInRange(0, 4)) {
    case 0:     // PTE: present, any NextLevel, any permissions, STREAMING
        return fuzz_page(in) | IOMMU_PTE_PR |
               in.ConsumeIntegralInRange<uint64_t>(0, 7)
                   << IOMMU_PTE_NEXT_LEVEL_SHIFT |
               (in.ConsumeBool() ? IOMMU_PTE_IR : 0) |
               (in.ConsumeBool() ? IOMMU_PTE_IW : 0) |
               (in.ConsumeBool() ? IOGUARD_PTE_STREAMING : 0);
    case 1:     // DTE quadword 0
        return fuzz_page(in) | DTE_FLAG_V |
               (in.ConsumeBool() ? DTE_FLAG_TV : 0) |
               in.ConsumeIntegralInRange<uint64_t>(0, 7) << DTE_MODE_SHIFT |
               (in.ConsumeBool() ? DTE_FLAG_IR : 0) |
               (in.ConsumeBool() ? DTE_FLAG_IW : 0);
    case 2:     // command: an opcode in dw1 bits 31:28
        return in.ConsumeIntegralInRange<uint64_t>(0, 15) << 60 |
               (in.ConsumeIntegral<uint64_t>() & 0x0fffffffffffffffULL);
    case 3:
        return 0;
    default:
        return in.ConsumeIntegral<uint64_t>();
    }
}

} // namespace ioguard_fuzz
