// The command buffer: commands are executed synchronously, in order, when
// the driver moves the tail (or enables the buffer). Each run executes at
// most one ring's worth of commands, so a guest cannot make it endless.
#include "bits.hh"
#include "hw/ioguard/amd-vi-regs.h"
#include "iommu.hh"

namespace ioguard {

void Iommu::process_commands()
{
    if (!test(control_, CONTROL_IOMMU_EN) || !test(control_, CONTROL_CMDBUF_EN) ||
        !(status_ & MMIO_STATUS_CMDBUF_RUN_MASK)) {
        return;
    }
    const uint64_t size = command_buffer_size();
    const uint64_t base = cmd_base_ & IOGUARD_BASE_ADDR_MASK;
    for (uint64_t n = 0; n < size / IOGUARD_CMD_SIZE && cmd_head_ != cmd_tail_;
         n++) {
        const uint64_t addr = base + cmd_head_;
        uint8_t buf[IOGUARD_CMD_SIZE];
        if (!host_.read_ram(addr, buf, sizeof(buf))) {
            guest_error("command buffer entry at 0x%llx is not in RAM",
                        (unsigned long long)addr);
            status_ &= ~uint64_t{MMIO_STATUS_CMDBUF_RUN_MASK};
            log_event_locked(Event::command_hardware_error(addr, 0),
                             FaultReason::CommandNotInRam);
            return;
        }
        uint32_t cmd[4];
        for (int i = 0; i < 4; i++) {
            cmd[i] = load_le32(buf + 4 * i);
        }
        if (const auto fired = inject(FaultSite::Command,
                                      {0, addr, false, int(cmd[1] >> 28)})) {
            if (fired->action == FaultAction::Stuck) {
                // The head stays here until a later tail write (or a change
                // of the rules) finds the rule no longer firing.
                return;
            }
            log_event_locked(Event::illegal_command_error(addr),
                             FaultReason::Injected);
            status_ &= ~uint64_t{MMIO_STATUS_CMDBUF_RUN_MASK};
            return;
        }
        stats_.count_command(cmd[1] >> 28);
        host_.command_executed(cmd, addr);
        if (execute_command(cmd, addr) == CommandResult::Stop) {
            // The head stays on the failed command; the driver restarts the
            // buffer by toggling CmdBufEn.
            status_ &= ~uint64_t{MMIO_STATUS_CMDBUF_RUN_MASK};
            return;
        }
        cmd_head_ = (cmd_head_ + IOGUARD_CMD_SIZE) % size;
    }
}

Iommu::CommandResult Iommu::execute_command(const uint32_t cmd[4],
                                            uint64_t addr)
{
    const unsigned opcode = cmd[1] >> 28;
    switch (opcode) {
    case CMD_COMPL_WAIT:
        return completion_wait(cmd);
    case CMD_INV_DEV_ENTRY:
        invalidate_devtab_entry(cmd[0] & 0xffff);
        return CommandResult::Done;
    case CMD_INV_IOMMU_PAGES:
        invalidate_iommu_pages(cmd);
        return CommandResult::Done;
    case CMD_INV_IOTLB_PAGES:
        invalidate_iotlb_pages(cmd);
        return CommandResult::Done;
    case CMD_INV_IRT:
        invalidate_interrupt_table(cmd[0] & 0xffff);
        return CommandResult::Done;
    case CMD_INV_ALL:
        invalidate_iommu_all();
        return CommandResult::Done;
    case CMD_PREFETCH_IOMMU_PAGES:
        return prefetch_iommu_pages(cmd, addr);
    case CMD_COMPLETE_PPR:
        if (config_.guest_translation) {    // PPRSup
            return complete_ppr_request(cmd, addr);
        }
        [[fallthrough]];
    default:
        // COMPLETE_PPR without PPRSup, and undefined opcodes.
        guest_error("illegal command opcode 0x%x at 0x%llx", opcode,
                    (unsigned long long)addr);
        log_event_locked(Event::illegal_command_error(addr),
                         FaultReason::IllegalCommand);
        return CommandResult::Stop;
    }
}

Iommu::CommandResult Iommu::completion_wait(const uint32_t cmd[4])
{
    if (const auto fired = inject(FaultSite::CompletionWait, {})) {
        if (fired->action == FaultAction::Delay) {
            delay_completion_wait(cmd, fired->delay_ns);
        }
        return CommandResult::Done;     // dropped, or done later
    }
    return complete_wait(cmd);
}

// COMPLETION_WAIT's store and interrupt.
Iommu::CommandResult Iommu::complete_wait(const uint32_t cmd[4])
{
    // Every earlier command has already taken effect: they run in order.
    if (cmd[0] & CMD_COMPL_WAIT_STORE_MASK) {
        const uint64_t store_addr =
            (uint64_t(cmd[1] & 0xfffff) << 32) | (cmd[0] & ~uint32_t{7});
        uint8_t data[8];
        store_le32(data, cmd[2]);
        store_le32(data + 4, cmd[3]);
        if (!host_.write_ram(store_addr, data, sizeof(data))) {
            guest_error("COMPLETION_WAIT store to 0x%llx is not in RAM",
                        (unsigned long long)store_addr);
            log_event_locked(Event::command_hardware_error(store_addr, 0),
                             FaultReason::CompletionStoreNotInRam);
            return CommandResult::Stop;
        }
    }
    if (cmd[0] & CMD_COMPL_WAIT_INT_MASK) {
        signal_locked(MMIO_STATUS_COM_WAIT_INT_MASK, CONTROL_COMWAIT_EN);
    }
    return CommandResult::Done;
}

void Iommu::invalidate_devtab_entry(uint16_t devid)
{
    device_table_.invalidate_devtab_entry(devid);
    host_.device_table_changed(devid);
}

IovaRange command_range(uint32_t dw2, uint32_t dw3)
{
    const uint64_t address = (uint64_t(dw3) << 32 | dw2) & ~uint64_t{0xfff};
    if (!(dw2 & CMD_INV_IOMMU_PAGES_SIZE_MASK)) {
        return {address, address + 0xfff};
    }
    // S=1: the lowest 0 bit at or above bit 12 at position n makes the
    // range the naturally aligned 2^(n+1) bytes around address. The
    // invalidate-all encoding (0x7fff_ffff_ffff_f000) has n = 63.
    const uint64_t ones = ~(address >> 12);
    const unsigned n = ones ? 12 + __builtin_ctzll(ones) : 64;
    if (n + 1 >= 64) {
        return {0, ~uint64_t{0}};
    }
    const uint64_t size = uint64_t{1} << (n + 1);
    const uint64_t first = address & ~(size - 1);
    return {first, first + (size - 1)};
}

// With GN=1 (guest translation offered), the range is one PASID's guest
// virtual addresses; PASID 0's are also those of requests without a PASID
// (DTE.GIoV), which is what the host's notifier users see. Without guest
// translation GN means nothing and the domain's pages go.
void Iommu::invalidate_iommu_pages(const uint32_t cmd[4])
{
    const uint16_t domain = cmd[1] & 0xffff;
    const IovaRange range = command_range(cmd[2], cmd[3]);
    if (config_.guest_translation && (cmd[2] & CMD_INV_IOMMU_PAGES_GN_MASK)) {
        const uint32_t pasid = cmd[0] & CMD_INV_IOMMU_PAGES_PASID_MASK;
        iotlb_.invalidate_guest_pages(domain, pasid, range.first, range.last);
        if (pasid == 0) {
            tell_host_pages_invalidated(domain, range.first, range.last);
        }
        return;
    }
    invalidate_domain_pages(domain, range.first, range.last);
    if (cmd[2] & CMD_INV_IOMMU_PAGES_PDE_MASK) {
        directory_cache_.invalidate_iommu_pages(domain, range.first,
                                                range.last);
    }
}

void Iommu::invalidate_domain_pages(uint16_t domain, uint64_t first,
                                    uint64_t last)
{
    iotlb_.invalidate_iommu_pages(domain, first, last);
    tell_host_pages_invalidated(domain, first, last);
}

// INVALIDATE_IOTLB_PAGES: the device IOTLB (ATS translation cache) of the
// endpoint devid drops the range. Only the host has such caches (devices
// with ATS, QEMU's device-IOTLB notifier users); the IOMMU's own IOTLB is
// INVALIDATE_IOMMU_PAGES's. With GN=1 the range is a PASID's: this IOMMU
// has no PASIDs (GTSup=0), so it is treated as the device's, which drops
// at least what was asked.
void Iommu::invalidate_iotlb_pages(const uint32_t cmd[4])
{
    const IovaRange range = command_range(cmd[2], cmd[3]);
    for (TranslationObserver *observer : translation_observers_) {
        observer->device_iotlb_invalidated(cmd[0] & 0xffff, range.first,
                                           range.last);
    }
    tell_host_device_iotlb(cmd[0] & 0xffff, range.first, range.last);
}

void Iommu::invalidate_interrupt_table(uint16_t devid)
{
    // Interrupt remapping entries are read from guest memory on every
    // interrupt, so nothing is cached here; the host may have (KVM routes).
    host_.interrupt_table_invalidated(devid);
}

void Iommu::invalidate_iommu_all()
{
    device_table_.invalidate_all();
    iotlb_.invalidate_iommu_all();
    directory_cache_.invalidate_iommu_all();
    host_.interrupt_table_invalidated(-1);
    host_.device_table_changed(-1);
    tell_host_pages_invalidated(-1, 0, ~uint64_t{0});
}

// PREFETCH_IOMMU_PAGES: fill the IOTLB with devid's translations of up to
// PFCount pages from Address (S=0), or of the naturally aligned range the
// address encodes (S=1, as INVALIDATE_IOMMU_PAGES), at most PFCount of
// them. Inval=1 drops the range's cached translations first. A page that
// does not translate ends the prefetch without an event: prefetching is a
// hint. GN=1 needs guest tables, which this IOMMU does not have (GTSup=0).
Iommu::CommandResult Iommu::prefetch_iommu_pages(const uint32_t cmd[4],
                                                 uint64_t addr)
{
    if ((cmd[0] & CMD_PREFETCH_DW0_RESERVED) || (cmd[1] & 0x0ff00000u) ||
        (cmd[2] & (CMD_PREFETCH_DW2_RESERVED | CMD_PREFETCH_GN_MASK))) {
        guest_error("PREFETCH_IOMMU_PAGES at 0x%llx has reserved bits or GN "
                    "set: %08x %08x %08x %08x", (unsigned long long)addr,
                    cmd[0], cmd[1], cmd[2], cmd[3]);
        log_event_locked(Event::illegal_command_error(addr),
                         FaultReason::IllegalCommand);
        return CommandResult::Stop;
    }
    const uint16_t devid = cmd[0] & 0xffff;
    const unsigned count = cmd[0] >> CMD_PREFETCH_PFCOUNT_SHIFT;
    IovaRange range = command_range(cmd[2], cmd[3]);
    if (!(cmd[2] & CMD_PREFETCH_SIZE_MASK) && count) {
        // PFCount pages, or up to the end of the address space.
        const uint64_t bytes = uint64_t{count} << 12;
        range.last = range.first > ~uint64_t{0} - bytes
                         ? ~uint64_t{0}
                         : range.first + bytes - 1;
    }
    DteLocation where;
    const auto dte = device_table_.read(devid, where);
    if (!dte || !dte->valid() || dte->illegal() || !dte->translation_valid() ||
        dte->mode() == 0) {
        return CommandResult::Done;     // nothing translated to prefetch
    }
    if (cmd[2] & CMD_PREFETCH_INVAL_MASK) {
        invalidate_domain_pages(dte->domain_id(), range.first, range.last);
    }
    const uint64_t filled_at = iotlb_.epoch();
    unsigned entries = 0, issued = 0;
    uint64_t at = range.first;
    for (unsigned n = 0; n < count && at <= range.last; n++) {
        uint64_t size = 0;
        bool installed = false;
        if (prefetch_page(devid, *dte, at, false, filled_at, size, entries,
                          installed) != Stop::None) {
            break;
        }
        issued += installed;
        const uint64_t next = (at & ~(size - 1)) + size;
        if (next == 0) {
            break;
        }
        at = next;
    }
    count_prefetch(stats_.requester(devid), entries, issued);
    return CommandResult::Done;
}

} // namespace ioguard
