#include "device_table.hh"

#include "bits.hh"
#include "hw/ioguard/amd-vi-regs.h"

namespace ioguard {

DeviceTableEntry DeviceTableEntry::decode(const uint64_t raw[4])
{
    DeviceTableEntry e;
    for (int i = 0; i < 4; i++) {
        e.raw[i] = raw[i];
    }
    const uint64_t q0 = raw[0], q1 = raw[1], q2 = raw[2], q3 = raw[3];

    e.valid = q0 & DTE_FLAG_V;
    e.translation_valid = q0 & DTE_FLAG_TV;
    e.mode = (q0 >> DTE_MODE_SHIFT) & DTE_MODE_MASK;
    e.page_table_root = q0 & IOGUARD_BASE_ADDR_MASK;
    e.read_allowed = q0 & DTE_FLAG_IR;
    e.write_allowed = q0 & DTE_FLAG_IW;
    e.domain_id = q1 & DTE_DOMID_MASK;

    e.interrupt_valid = q2 & DTE_IRQ_IV;
    e.interrupt_table_len = (q2 >> DTE_IRQ_TABLE_LEN_SHIFT) &
                            DTE_IRQ_TABLE_LEN_MASK;
    e.interrupt_table_root = q2 & DTE_IRQ_ROOT_MASK;
    e.interrupt_control = (q2 >> DTE_IRQ_INTCTL_SHIFT) & DTE_IRQ_INTCTL_MASK;
    e.init_pass = q2 & DTE_IRQ_INITPASS;
    e.extint_pass = q2 & DTE_IRQ_EINTPASS;
    e.nmi_pass = q2 & DTE_IRQ_NMIPASS;
    e.lint0_pass = q2 & DTE_IRQ_LINT0PASS;
    e.lint1_pass = q2 & DTE_IRQ_LINT1PASS;

    // Reserved bits only count in the half of the entry that is in use.
    if (e.valid && ((q0 & DTE_Q0_RESERVED) || (q3 & DTE_Q3_RESERVED) ||
                    (e.translation_valid && e.mode == 7))) {
        e.illegal = true;
    }
    if (e.interrupt_valid &&
        ((q2 & DTE_Q2_RESERVED) || e.interrupt_table_len > 11 ||
         e.interrupt_control == 3)) {
        e.illegal = true;
    }
    return e;
}

} // namespace ioguard
