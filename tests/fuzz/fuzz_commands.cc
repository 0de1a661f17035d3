// Register writes, the command buffer and the event log, all guest-made:
// the input writes registers of every width (the bases of the device table,
// command buffer and event log included, anywhere in or out of RAM), words
// into RAM shaped like commands and table entries, and makes DMA and
// interrupts that log events.
//
// Invariants beyond "does not crash":
// - bounded work: one register write executes at most one command buffer's
//   worth of commands (2^15 at most), and reads RAM a bounded number of
//   times per command;
// - the registers stay architected: the command buffer's head and tail
//   and the event log's tail stay 16-byte aligned and inside their buffer
//   (at most 512 KiB);
// - the engine writes RAM only through the event log and COMPLETION_WAIT,
//   at most one write per event or command.
#include "fuzz_machine.hh"

using namespace ioguard_fuzz;

namespace {

constexpr uint64_t kRegisters[] = {
    MMIO_DEV_TABLE_OFFSET,  MMIO_CMD_BUF_OFFSET,    MMIO_EVT_BUF_OFFSET,
    MMIO_CONTROL_OFFSET,    MMIO_EXCL_BASE_OFFSET,  MMIO_EXCL_LIMIT_OFFSET,
    MMIO_EXT_FEATURES,      MMIO_PPR_LOG_OFFSET,    MMIO_GA_LOG_BASE_OFFSET,
    MMIO_INTCAPXT_EVT_OFFSET, MMIO_CMD_HEAD_OFFSET, MMIO_CMD_TAIL_OFFSET,
    MMIO_EVT_HEAD_OFFSET,   MMIO_EVT_TAIL_OFFSET,   MMIO_STATUS_OFFSET,
    IOGUARD_MMIO_ID,        IOGUARD_MMIO_FEATURES,  IOGUARD_MMIO_CONTROL,
};
constexpr uint64_t kMaxRing = 512 << 10;
constexpr uint64_t kMaxCommands = kMaxRing / 16;
// A command reads itself, a DTE, and at most 255 prefetched pages of up to
// 6 table levels each (PREFETCH_IOMMU_PAGES).
constexpr uint64_t kMaxReadsPerCommand = 2 + 255 * 6;

void check_registers(FuzzMachine &m)
{
    const uint64_t head = m.mmio_read(MMIO_CMD_HEAD_OFFSET);
    const uint64_t tail = m.mmio_read(MMIO_CMD_TAIL_OFFSET);
    const uint64_t evt_tail = m.mmio_read(MMIO_EVT_TAIL_OFFSET);
    for (uint64_t r : {head, tail, evt_tail}) {
        FUZZ_CHECK(r % 16 == 0 && r < kMaxRing, "pointer register 0x%llx",
                   (unsigned long long)r);
    }
}

void write_register(FuzzMachine &m, FuzzedDataProvider &in)
{
    uint64_t offset;
    if (in.ConsumeIntegralInRange(0, 7)) {
        offset = kRegisters[in.ConsumeIntegralInRange<size_t>(
            0, sizeof(kRegisters) / sizeof(kRegisters[0]) - 1)];
    } else {
        offset = in.ConsumeIntegralInRange<uint64_t>(0, 0x3fff);
    }
    static const unsigned kSizes[] = {1, 2, 4, 8};
    const unsigned size = kSizes[in.ConsumeIntegralInRange(0, 3)];
    offset &= ~uint64_t{size - 1};
    uint64_t value;
    switch (offset) {
    case MMIO_DEV_TABLE_OFFSET:
    case MMIO_CMD_BUF_OFFSET:
    case MMIO_EVT_BUF_OFFSET:
        // A base in RAM or not, a length field in the top byte.
        value = fuzz_page(in) | in.ConsumeIntegral<uint64_t>() % 16 << 56 |
                in.ConsumeIntegralInRange<uint64_t>(0, 511);
        break;
    case MMIO_CONTROL_OFFSET:
        value = in.ConsumeIntegral<uint64_t>() |
                (in.ConsumeBool() ? 0x1015 : 0);     // IOMMU, log, cmdbuf on
        break;
    case MMIO_CMD_TAIL_OFFSET:
    case MMIO_EVT_HEAD_OFFSET:
        value = in.ConsumeIntegralInRange<uint64_t>(0, 8192) * 16;
        break;
    default:
        value = in.ConsumeIntegral<uint64_t>();
    }
    const uint64_t commands = m.commands, reads = m.ram_reads,
                   writes = m.ram_writes;
    m.mmio_write(offset, value, size);
    const uint64_t ran = m.commands - commands;
    FUZZ_CHECK(ran <= kMaxCommands, "%llu commands for one register write",
               (unsigned long long)ran);
    FUZZ_CHECK(m.ram_reads - reads <= (ran + 1) * kMaxReadsPerCommand,
               "%llu RAM reads for %llu commands",
               (unsigned long long)(m.ram_reads - reads),
               (unsigned long long)ran);
    // A COMPLETION_WAIT store and at most one event per command.
    FUZZ_CHECK(m.ram_writes - writes <= 2 * ran + 1,
               "%llu RAM writes for %llu commands",
               (unsigned long long)(m.ram_writes - writes),
               (unsigned long long)ran);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzedDataProvider in(data, size);
    FuzzMachine m(fuzz_config(in));
    if (in.ConsumeBool()) {
        m.enable();
    }
    while (in.remaining_bytes()) {
        switch (in.ConsumeIntegralInRange(0, 6)) {
        case 0:     // a word of RAM: a table entry, a command, anything
            m.w64(in.ConsumeIntegralInRange<uint64_t>(0, kRamSize / 8 - 1) * 8,
                  fuzz_word(in));
            break;
        case 1:     // a command at the standard command buffer's tail
            {
                uint32_t cmd[4];
                const uint64_t lo = fuzz_word(in), hi = fuzz_word(in);
                cmd[0] = uint32_t(lo);
                cmd[1] = uint32_t(lo >> 32);
                cmd[2] = uint32_t(hi);
                cmd[3] = uint32_t(hi >> 32);
                m.run_command(cmd);
            }
            break;
        case 2:
        case 3:
            write_register(m, in);
            break;
        case 4:     // a DMA, which may log an event
            {
                IoguardTranslation t;
                const uint64_t writes = m.ram_writes;
                ioguard_iommu_translate(
                    m.iommu, in.ConsumeIntegral<uint16_t>(),
                    in.ConsumeIntegral<uint64_t>(),
                    in.ConsumeIntegralInRange<unsigned>(0, 2), &t);
                FUZZ_CHECK(m.ram_writes - writes <= 1,
                           "%llu RAM writes for one DMA",
                           (unsigned long long)(m.ram_writes - writes));
            }
            break;
        case 5:     // an interrupt
            {
                const IoguardMsi msi{0xfee00000 |
                                         in.ConsumeIntegralInRange<uint64_t>(
                                             0, 0xfffff),
                                     in.ConsumeIntegral<uint32_t>()};
                IoguardMsi out;
                ioguard_iommu_remap_msi(m.iommu, in.ConsumeIntegral<uint16_t>(),
                                        &msi, &out);
            }
            break;
        default:
            m.now += in.ConsumeIntegral<uint32_t>();
            m.mmio_read(in.ConsumeIntegralInRange<uint64_t>(0, 0x3fff / 8) * 8);
            break;
        }
        check_registers(m);
    }
    return 0;
}
