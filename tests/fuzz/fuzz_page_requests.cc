// Page requests (PCIe PRI) and the PPR log, with guest-made registers, DTEs
// and COMPLETE_PPR_REQUEST commands: the input writes the PPR log's base
// (in RAM or not, any length), head, tail, the control and status
// registers, DTEs with and without PPR, makes page requests of every shape
// and queues COMPLETE_PPR_REQUEST commands, well-formed or not.
//
// Invariants beyond "does not crash":
// - bounded work: a page request reads at most its DTE and writes RAM at
//   most once (its PPR log entry or its event);
// - the PPR log's head and tail stay 16-byte aligned and inside the log;
// - a request reported logged is in the log, exactly, at the old tail,
//   and the tail moved by one entry; one that is not moved nothing;
// - a response reaches the device only from a COMPLETE_PPR_REQUEST with no
//   reserved bit set, with its fields.
#include "fuzz_machine.hh"

using namespace ioguard_fuzz;

namespace {

constexpr uint64_t kPprLog = 0x4000;    // 4 KiB: 256 entries
constexpr uint64_t kMaxLog = 512 << 10;

uint64_t log_size(uint64_t base_register)
{
    const unsigned len = (base_register >> 56) & 0xf;
    return (uint64_t{1} << (len < 8 ? 8 : len)) * 16;
}

void check_pointers(FuzzMachine &m)
{
    const uint64_t size = log_size(m.mmio_read(MMIO_PPR_LOG_OFFSET));
    for (uint64_t r : {m.mmio_read(MMIO_PPR_HEAD_OFFSET),
                       m.mmio_read(MMIO_PPR_TAIL_OFFSET)}) {
        FUZZ_CHECK(r % 16 == 0 && r < size && r < kMaxLog,
                   "PPR log pointer 0x%llx (log of %llu bytes)",
                   (unsigned long long)r, (unsigned long long)size);
    }
}

void write_register(FuzzMachine &m, FuzzedDataProvider &in)
{
    static const uint64_t kRegisters[] = {
        MMIO_PPR_LOG_OFFSET,  MMIO_PPR_HEAD_OFFSET,     MMIO_PPR_TAIL_OFFSET,
        MMIO_CONTROL_OFFSET,  MMIO_STATUS_OFFSET,       MMIO_INTCAPXT_PPR_OFFSET,
        MMIO_DEV_TABLE_OFFSET,
    };
    const uint64_t offset = kRegisters[in.ConsumeIntegralInRange<size_t>(
        0, sizeof(kRegisters) / sizeof(kRegisters[0]) - 1)];
    uint64_t value = in.ConsumeIntegral<uint64_t>();
    switch (offset) {
    case MMIO_PPR_LOG_OFFSET:
        value = (in.ConsumeBool() ? kPprLog : fuzz_page(in)) |
                in.ConsumeIntegralInRange<uint64_t>(0, 15) << 56 |
                (value & 0xfff);
        break;
    case MMIO_CONTROL_OFFSET:
        // Mostly the IOMMU, command buffer, event and PPR logs on.
        if (in.ConsumeIntegralInRange(0, 3)) {
            value |= 1ULL << CONTROL_IOMMU_EN | 1ULL << CONTROL_CMDBUF_EN |
                     1ULL << CONTROL_EVT_LOG_EN | 1ULL << CONTROL_PPR_EN |
                     1ULL << CONTROL_PPRLOG_EN;
        }
        break;
    case MMIO_DEV_TABLE_OFFSET:
        value = kDevTable | kDevTableSizeField;
        break;
    }
    static const unsigned kSizes[] = {1, 2, 4, 8};
    const unsigned size = kSizes[in.ConsumeIntegralInRange(0, 3)];
    m.mmio_write(offset + in.ConsumeIntegralInRange<unsigned>(0, 8 / size - 1) *
                              size,
                 value, size);
}

void page_request(FuzzMachine &m, FuzzedDataProvider &in)
{
    IoguardPageRequest r{};
    r.devid = in.ConsumeIntegralInRange<uint16_t>(0, kDevids + 3);
    r.pasid_valid = in.ConsumeBool();
    r.pasid = in.ConsumeBool() ? in.ConsumeIntegral<uint32_t>()
                               : in.ConsumeIntegralInRange<uint32_t>(0, 0xffff);
    r.address = in.ConsumeIntegral<uint64_t>();
    r.perm = in.ConsumeIntegralInRange<unsigned>(0, 3);
    r.exec = in.ConsumeBool();
    r.privileged = in.ConsumeBool();
    r.group = in.ConsumeIntegral<uint16_t>();
    r.last = in.ConsumeBool();

    const uint64_t base_register = m.mmio_read(MMIO_PPR_LOG_OFFSET);
    const uint64_t size = log_size(base_register);
    const uint64_t tail = m.mmio_read(MMIO_PPR_TAIL_OFFSET);
    const uint64_t reads = m.ram_reads, writes = m.ram_writes;
    const unsigned outcome = ioguard_iommu_page_request(m.iommu, &r);
    FUZZ_CHECK(m.ram_reads - reads <= 1, "%llu RAM reads for a page request",
               (unsigned long long)(m.ram_reads - reads));
    FUZZ_CHECK(m.ram_writes - writes <= 1,
               "%llu RAM writes for a page request",
               (unsigned long long)(m.ram_writes - writes));
    const uint64_t new_tail = m.mmio_read(MMIO_PPR_TAIL_OFFSET);
    if (outcome != IOGUARD_PAGE_REQUEST_LOGGED) {
        FUZZ_CHECK(outcome == IOGUARD_PAGE_REQUEST_INVALID ||
                       outcome == IOGUARD_PAGE_REQUEST_FAILED,
                   "outcome %u", outcome);
        FUZZ_CHECK(new_tail == tail, "tail 0x%llx -> 0x%llx, not logged",
                   (unsigned long long)tail, (unsigned long long)new_tail);
        return;
    }
    FUZZ_CHECK(new_tail == (tail + 16) % size, "tail 0x%llx -> 0x%llx",
               (unsigned long long)tail, (unsigned long long)new_tail);
    FUZZ_CHECK(r.pasid_valid ? r.pasid <= 0xffff : true,
               "PASID 0x%x logged", r.pasid);
    // The entry, field by field, as Linux's PPR_* macros read it.
    const uint64_t at = (base_register & IOGUARD_BASE_ADDR_MASK) + tail;
    const uint64_t q0 = m.r64(at), q1 = m.r64(at + 8);
    const uint32_t pasid = r.pasid_valid ? r.pasid : 0;
    const unsigned flags =
        (r.perm & IOGUARD_PERM_READ ? PPR_FLAG_READ : 0) |
        (r.perm & IOGUARD_PERM_WRITE ? PPR_FLAG_WRITE : 0) |
        (r.exec ? PPR_FLAG_EXEC : 0) | (r.privileged ? 0 : PPR_FLAG_US) |
        (r.pasid_valid ? PPR_FLAG_GN : 0);
    FUZZ_CHECK((q0 & 0xffff) == r.devid && (q0 >> 60) == PPR_REQ_FAULT &&
                   ((q0 >> 48) & 0xfff) == flags &&
                   ((q0 >> 16) & 0xffff) == (pasid & 0xffff) &&
                   ((q0 >> 42) & 0xf) == ((pasid >> 16) & 0xf) &&
                   ((q0 >> 32) & 0x3ff) ==
                       ((r.group & 0x1ffu) | (r.last ? PPR_TAG_LAST : 0)) &&
                   q1 == (r.address & ~uint64_t{0xfff}),
               "entry %016llx %016llx", (unsigned long long)q0,
               (unsigned long long)q1);
}

void complete_ppr(FuzzMachine &m, FuzzedDataProvider &in)
{
    uint32_t cmd[4];
    const bool gn = in.ConsumeBool();
    if (in.ConsumeBool()) {     // as Linux builds it
        cmd[0] = in.ConsumeIntegral<uint16_t>();
        cmd[1] = uint32_t(CMD_COMPLETE_PPR) << 28 |
                 (gn ? in.ConsumeIntegralInRange<uint32_t>(0, 0xfffff) : 0);
        cmd[2] = gn ? CMD_COMPLETE_PPR_GN_MASK : 0;
        cmd[3] = in.ConsumeIntegralInRange<uint32_t>(0, 0x1ff) |
                 in.ConsumeIntegralInRange<uint32_t>(0, 15) << 12;
    } else {
        for (uint32_t &dw : cmd) {
            dw = in.ConsumeIntegral<uint32_t>();
        }
        cmd[1] = (cmd[1] & 0x0fffffff) | uint32_t(CMD_COMPLETE_PPR) << 28;
    }
    const size_t responses = m.page_responses.size();
    m.run_command(cmd);
    if (m.page_responses.size() == responses) {
        return;
    }
    FUZZ_CHECK(m.page_responses.size() == responses + 1, "%zu responses",
               m.page_responses.size() - responses);
    const bool cmd_gn = cmd[2] & CMD_COMPLETE_PPR_GN_MASK;
    FUZZ_CHECK(!(cmd[0] >> 16) && !(cmd[1] & 0x0ff00000) &&
                   (cmd_gn || !(cmd[1] & 0xfffff)) &&
                   !(cmd[2] & ~uint32_t{CMD_COMPLETE_PPR_GN_MASK}) &&
                   !(cmd[3] & 0xffff0e00),
               "answered a command with reserved bits: %08x %08x %08x %08x",
               cmd[0], cmd[1], cmd[2], cmd[3]);
    const FuzzMachine::PageResponse &p = m.page_responses.back();
    FUZZ_CHECK(p.devid == (cmd[0] & 0xffff) && p.pasid_valid == cmd_gn &&
                   p.pasid == (cmd_gn ? cmd[1] & 0xfffff : 0) &&
                   p.group == (cmd[3] & 0x1ff) &&
                   p.code == ((cmd[3] >> 12) & 0xf),
               "response %04x %d %05x %03x %x", p.devid, p.pasid_valid,
               p.pasid, p.group, p.code);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzedDataProvider in(data, size);
    IoguardConfig config = fuzz_config(in);
    config.guest_translation = true;    // PPRSup
    FuzzMachine m(config);
    m.enable(1ULL << CONTROL_PPR_EN | 1ULL << CONTROL_PPRLOG_EN |
             (in.ConsumeBool() ? 1ULL << CONTROL_PPRINT_EN : 0));
    m.mmio_write(MMIO_PPR_LOG_OFFSET, kPprLog | 8ULL << 56);
    while (in.remaining_bytes()) {
        switch (in.ConsumeIntegralInRange(0, 5)) {
        case 0: {   // a DTE's first quadword, with or without PPR
            const uint64_t devid = in.ConsumeIntegralInRange<uint64_t>(
                0, kDevids - 1);
            m.w64(kDevTable + devid * 32,
                  in.ConsumeBool() ? fuzz_word(in)
                                   : DTE_FLAG_V | DTE_FLAG_TV |
                                         (in.ConsumeBool() ? DTE_FLAG_PPR
                                                           : 0));
            uint32_t inv[4] = {uint32_t(devid),
                               uint32_t(CMD_INV_DEV_ENTRY) << 28, 0, 0};
            m.run_command(inv);
            break;
        }
        case 1:
            write_register(m, in);
            break;
        case 2:
        case 3:
            page_request(m, in);
            break;
        case 4:
            complete_ppr(m, in);
            break;
        default:    // as amd_iommu_poll_ppr_log: consume up to the tail
            m.now += in.ConsumeIntegral<uint32_t>();
            m.mmio_write(MMIO_PPR_HEAD_OFFSET,
                         m.mmio_read(MMIO_PPR_TAIL_OFFSET), 4);
            break;
        }
        check_pointers(m);
    }
    return 0;
}
