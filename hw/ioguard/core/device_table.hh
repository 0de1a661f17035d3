// The device table (AMD IOMMU spec, "Device Table"): one 256-bit entry per
// requester ID in guest memory, which the IOMMU finds through the Device
// Table Base Address register and keeps in its device table cache until
// INVALIDATE_DEVTAB_ENTRY or INVALIDATE_IOMMU_ALL says otherwise.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>

#include "host.hh"
#include "hw/ioguard/amd-vi-regs.h"
#include "sharded_cache.hh"

namespace ioguard {

// An entry's four quadwords, as the guest wrote them.
using RawDte = std::array<uint64_t, 4>;

// An entry as the guest wrote it, with its fields named as in the spec
// (and Linux's amd_iommu_types.h). Each field is a bit test or a shift on
// demand: the DMA path copies the entry out of the cache on every request
// and reads a handful of them.
struct DeviceTableEntry {
    RawDte raw = {};

    // DMA remapping (q0, q1)
    bool valid() const { return raw[0] & DTE_FLAG_V; }
    bool translation_valid() const { return raw[0] & DTE_FLAG_TV; }
    // Paging levels; 0: no translation.
    unsigned mode() const
    {
        return (raw[0] >> DTE_MODE_SHIFT) & DTE_MODE_MASK;
    }
    uint64_t page_table_root() const { return raw[0] & IOGUARD_BASE_ADDR_MASK; }
    bool read_allowed() const { return raw[0] & DTE_FLAG_IR; }   // IR
    bool write_allowed() const { return raw[0] & DTE_FLAG_IW; }  // IW
    uint16_t domain_id() const { return raw[1] & DTE_DOMID_MASK; }
    // The device's page requests go to the PPR log (PPR).
    bool ppr_enabled() const { return raw[0] & DTE_FLAG_PPR; }

    // Guest translation (q0, q1, q2), honoured only while the IOMMU offers
    // and enables it (GTSup, GTEn): PASID -> GCR3 table -> v2 tables.
    bool guest_valid() const { return raw[0] & DTE_FLAG_GV; }         // GV
    bool guest_io_valid() const { return raw[0] & DTE_FLAG_GIOV; }    // GIoV
    // GCR3 table levels below the root (GLX)
    unsigned gcr3_levels() const
    {
        return (raw[0] >> DTE_GLX_SHIFT) & DTE_GLX_MASK;
    }
    uint64_t gcr3_table_root() const
    {
        return ((raw[0] >> DTE_GCR3_SHIFT_A) & 0x7) << 12 |
               ((raw[1] >> DTE_GCR3_SHIFT_B) & 0xffff) << 15 |
               ((raw[1] >> DTE_GCR3_SHIFT_C) & 0x1fffff) << 31;
    }
    // GUEST_PGTABLE_4_LEVEL or _5_LEVEL; 2 and 3 are reserved.
    unsigned guest_paging_mode() const
    {
        return (raw[2] >> DTE_GPT_LEVEL_SHIFT) & DTE_GPT_LEVEL_MASK;
    }

    // Interrupt remapping (q2)
    bool interrupt_valid() const { return raw[2] & DTE_IRQ_IV; } // IV
    // log2(entries)
    unsigned interrupt_table_len() const
    {
        return (raw[2] >> DTE_IRQ_TABLE_LEN_SHIFT) & DTE_IRQ_TABLE_LEN_MASK;
    }
    uint64_t interrupt_table_root() const { return raw[2] & DTE_IRQ_ROOT_MASK; }
    unsigned interrupt_control() const  // IntCtl
    {
        return (raw[2] >> DTE_IRQ_INTCTL_SHIFT) & DTE_IRQ_INTCTL_MASK;
    }
    bool init_pass() const { return raw[2] & DTE_IRQ_INITPASS; }
    bool extint_pass() const { return raw[2] & DTE_IRQ_EINTPASS; }
    bool nmi_pass() const { return raw[2] & DTE_IRQ_NMIPASS; }
    bool lint0_pass() const { return raw[2] & DTE_IRQ_LINT0PASS; }
    bool lint1_pass() const { return raw[2] & DTE_IRQ_LINT1PASS; }

    // A reserved bit or a reserved encoding is present: the entry is an
    // ILLEGAL_DEV_TABLE_ENTRY and nothing else in it may be used.
    // (Reserved bits only count in the half of the entry that is in use.)
    bool illegal() const
    {
        return (valid() && ((raw[0] & DTE_Q0_RESERVED) ||
                            (raw[3] & DTE_Q3_RESERVED) ||
                            (translation_valid() && mode() == 7))) ||
               (interrupt_valid() &&
                ((raw[2] & DTE_Q2_RESERVED) || interrupt_table_len() > 11 ||
                 interrupt_control() == 3));
    }
};

// Where a requester's entry is in guest memory, or that the table is too
// small to have one.
struct DteLocation {
    bool beyond_table = false;
    uint64_t address = 0;
};

struct DevidHash {
    size_t operator()(uint16_t d) const { return d * 0x9e3779b1u >> 7; }
};

class DeviceTable {
public:
    explicit DeviceTable(Host &host) : host_(host) {}

    // The Device Table Base Address register's value as the IOMMU uses it
    // from now on. Empties the cache.
    void set_base(uint64_t base);

    DteLocation locate(uint16_t devid) const;

    // devid's entry as guest memory holds it now, past the cache. nullopt
    // when where.beyond_table or the entry at where.address is not RAM.
    std::optional<DeviceTableEntry> load(uint16_t devid,
                                         DteLocation &where) const;
    // devid's entry from the cache, or loaded (see load) and cached. (The
    // hit is here, for the DMA path to inline; the miss is not.)
    std::optional<DeviceTableEntry> read(uint16_t devid, DteLocation &where)
    {
        auto dte = cache_.lookup(devid);
        if (!dte) {
            dte = load_and_cache(devid, where);
        }
        return dte;     // one result on every path (see ShardedCache)
    }
    // The cache's copy of devid's entry, if it has one.
    std::optional<DeviceTableEntry> cached(uint16_t devid) const
    {
        return cache_.lookup(devid);
    }

    // INVALIDATE_DEVTAB_ENTRY
    void invalidate_devtab_entry(uint16_t devid) { cache_.erase(devid); }
    // INVALIDATE_IOMMU_ALL (and the IOMMU switched on or off, reset, a
    // restored snapshot).
    void invalidate_all() { cache_.clear(); }

private:
    std::optional<DeviceTableEntry> load_and_cache(uint16_t devid,
                                                   DteLocation &where);

    Host &host_;
    std::atomic<uint64_t> base_{0};
    // Entries as the guest wrote them, four words: the DMA path copies one
    // out of the cache on every request, and decoding the few fields it
    // reads is cheaper than copying a decoded entry.
    ShardedCache<uint16_t, DeviceTableEntry, DevidHash> cache_;
};

} // namespace ioguard
