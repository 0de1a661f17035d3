// Interrupt remapping: an MSI write from a requester is looked up in the
// interrupt remapping table its DTE names (32-bit IRTEs, or 128-bit ones
// while GAEn is set), and delivered as the entry says, or blocked.
#include "bits.hh"
#include "hw/ioguard/amd-vi-regs.h"
#include "interrupt_remap.hh"
#include "iommu.hh"

namespace ioguard {

namespace {

enum DeliveryMode : unsigned {
    kFixed = 0,
    kArbitrated = 1,
    kSmi = 2,
    kNmi = 4,
    kInit = 5,
    kExtInt = 7,
};

// The compatibility-format MSI a remapped interrupt is delivered as; the
// destination's bits 31:8 ride in the high address as QEMU's x2APIC expects.
IoguardMsi to_msi(const RemappedInterrupt &r, uint32_t original_data)
{
    IoguardMsi out;
    out.address = IOGUARD_MSI_ADDR_FIRST | uint64_t(r.destination & 0xff) << 12 |
                  (r.dest_logical ? uint64_t{1} << 2 : 0) |
                  uint64_t(r.destination & 0xffffff00) << 32;
    // Trigger mode and level (bits 15:14) come from the requester.
    out.data = r.vector | r.int_type << 8 | (original_data & 0xc000);
    return out;
}

} // namespace

RemappedInterrupt decode_irte32(uint32_t e)
{
    return RemappedInterrupt{
        .remap_enabled = (e & IRTE_REMAP_EN) != 0,
        .suppress_fault = (e & IRTE_SUP_IOPF) != 0,
        .guest_mode = false,
        .int_type = unsigned(bits(e, 4, 2)),
        .dest_logical = (e & IRTE_DM) != 0,
        .destination = uint32_t(bits(e, 15, 8)),
        .vector = uint8_t(bits(e, 23, 16)),
    };
}

RemappedInterrupt decode_irte128(uint64_t lo, uint64_t hi)
{
    return RemappedInterrupt{
        .remap_enabled = (lo & IRTE_REMAP_EN) != 0,
        .suppress_fault = (lo & IRTE_SUP_IOPF) != 0,
        .guest_mode = (lo & IRTE_GUEST_MODE) != 0,
        .int_type = unsigned(bits(lo, 4, 2)),
        .dest_logical = (lo & IRTE_DM) != 0,
        .destination = uint32_t(bits(lo, 31, 8) | bits(hi, 63, 56) << 24),
        .vector = uint8_t(bits(hi, 7, 0)),
    };
}

bool Iommu::remap_msi(uint16_t devid, const IoguardMsi &in, IoguardMsi &out)
{
    out = in;
    if (!enabled_.load(std::memory_order_acquire)) {
        return true;
    }
    if (inject(FaultSite::Interrupt, {devid, in.address, true})) {
        return false;   // lost, without a trace the guest could see
    }
    if (!config_.intremap) {
        return true;
    }
    RequesterCounters *counters = stats_.requester(devid);
    const unsigned flags = EVENT_FLAG_I | EVENT_FLAG_RW;
    const auto dte = fetch_dte(devid, in.address, flags);
    if (!dte) {
        bump(counters, &RequesterCounters::interrupts_blocked);
        return false;
    }
    if (!dte->interrupt_valid()) {
        return true;    // IV=0: interrupts pass unmodified
    }
    if (dte->illegal()) {
        guest_error("device table entry of %04x has reserved interrupt "
                    "fields: %016llx", devid, (unsigned long long)dte->raw[2]);
        log_event(Event::illegal_dev_table_entry(devid, in.address,
                                                 flags | EVENT_FLAG_RZ),
                  FaultReason::IllegalDeviceTableEntry);
        bump(counters, &RequesterCounters::interrupts_blocked);
        return false;
    }

    const unsigned delivery = bits(in.data, 10, 8);
    bool pass = false;
    switch (delivery) {
    case kFixed:
    case kArbitrated:
        if (dte->interrupt_control() == DTE_INTCTL_PASS) {
            return true;
        }
        if (dte->interrupt_control() != DTE_INTCTL_REMAP) {
            // IntCtl=00b: target abort
            bump(counters, &RequesterCounters::interrupts_blocked);
            return false;
        }
        break;
    case kNmi: pass = dte->nmi_pass(); break;
    case kInit: pass = dte->init_pass(); break;
    case kExtInt: pass = dte->extint_pass(); break;
    default:
        pass = false;   // SMI and reserved modes are not forwarded
        break;
    }
    if (delivery != kFixed && delivery != kArbitrated) {
        if (!pass) {
            bump(counters, &RequesterCounters::interrupts_blocked);
        }
        return pass;
    }

    const unsigned index = bits(in.data, 10, 0);
    if (index >= (1u << dte->interrupt_table_len())) {
        log_event(Event::io_page_fault(devid, dte->domain_id(), in.address,
                                       flags),
                  FaultReason::InterruptIndexBeyondTable);
        bump(counters, &RequesterCounters::interrupts_blocked);
        return false;
    }
    const bool wide = ga_enabled_.load(std::memory_order_acquire);
    const uint64_t entry_size = wide ? 16 : 4;
    const uint64_t irte_addr = dte->interrupt_table_root() + index * entry_size;
    uint8_t buf[16];
    if (!host_.read_ram(irte_addr, buf, entry_size)) {
        guest_error("interrupt remapping entry %u of %04x at 0x%llx is not "
                    "in RAM", index, devid, (unsigned long long)irte_addr);
        log_event(Event::page_tab_hardware_error(devid, dte->domain_id(),
                                                 irte_addr, flags),
                  FaultReason::InterruptTableNotInRam);
        bump(counters, &RequesterCounters::interrupts_blocked);
        return false;
    }
    const RemappedInterrupt r = wide ? decode_irte128(load_le64(buf),
                                                      load_le64(buf + 8))
                                     : decode_irte32(load_le32(buf));
    if (!r.remap_enabled || r.guest_mode) {
        if (r.guest_mode) {
            guest_error("IRTE %u of %04x asks for guest (vAPIC) mode, which "
                        "is not offered (GAMSup=0)", index, devid);
        }
        if (!r.suppress_fault) {
            log_event(Event::io_page_fault(devid, dte->domain_id(), in.address,
                                           flags),
                      FaultReason::InterruptNotRemapped);
        }
        bump(counters, &RequesterCounters::interrupts_blocked);
        return false;
    }
    out = to_msi(r, in.data);
    bump(counters, &RequesterCounters::interrupts_remapped);
    return true;
}

} // namespace ioguard
