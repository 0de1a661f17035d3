// Device table entries (256 bits, one per requester ID), decoded once from
// a local copy of guest memory and validated.
#pragma once

#include <cstdint>

namespace ioguard {

struct DeviceTableEntry {
    uint64_t raw[4] = {};

    // DMA remapping (q0, q1)
    bool valid = false;              // V
    bool translation_valid = false;  // TV
    unsigned mode = 0;               // paging levels, 0 = no translation
    uint64_t page_table_root = 0;
    bool read_allowed = false;       // IR
    bool write_allowed = false;      // IW
    uint16_t domain_id = 0;

    // Interrupt remapping (q2)
    bool interrupt_valid = false;    // IV
    unsigned interrupt_table_len = 0; // log2(entries)
    uint64_t interrupt_table_root = 0;
    unsigned interrupt_control = 0;  // IntCtl
    bool init_pass = false;
    bool extint_pass = false;
    bool nmi_pass = false;
    bool lint0_pass = false;
    bool lint1_pass = false;

    // Set when a reserved bit or a reserved encoding is present: the entry
    // is an ILLEGAL_DEV_TABLE_ENTRY and nothing else in it may be used.
    bool illegal = false;

    static DeviceTableEntry decode(const uint64_t raw[4]);
};

} // namespace ioguard
