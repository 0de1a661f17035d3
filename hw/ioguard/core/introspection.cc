// What the monitor asks the engine: fault records, a requester's DTE and
// interrupt remapping table, and what it can reach. Everything is read
// afresh from guest memory: the answers say what the guest's tables say,
// not what the IOMMU happens to cache.
#include "bits.hh"
#include "guest_walker.hh"
#include "hw/ioguard/amd-vi-regs.h"
#include "interrupt_remap.hh"
#include "iommu.hh"

namespace ioguard {

namespace {

// An interrupt remapping table has at most 2^11 entries.
constexpr unsigned kMaxIrtLen = 11;

unsigned dma_of(bool enabled, const std::optional<DeviceTableEntry> &dte,
                bool guest_fields_illegal, bool guest_tables)
{
    if (!enabled) {
        return IOGUARD_DMA_UNTRANSLATED;
    }
    if (!dte || dte->illegal() || guest_fields_illegal) {
        return IOGUARD_DMA_BLOCKED;
    }
    if (!dte->valid()) {
        return IOGUARD_DMA_UNTRANSLATED;
    }
    if (guest_tables) {
        return IOGUARD_DMA_GUEST_TRANSLATED;
    }
    if (!dte->translation_valid() || dte->mode() == 0) {
        return IOGUARD_DMA_PASSTHROUGH;
    }
    return IOGUARD_DMA_TRANSLATED;
}

} // namespace

unsigned Iommu::dma_kind(const std::optional<DeviceTableEntry> &dte) const
{
    return dma_of(enabled_.load(std::memory_order_acquire), dte,
                  dte && guest_fields_illegal(*dte),
                  dte && uses_guest_tables(*dte));
}

std::vector<IoguardFaultRecord> Iommu::fault_records(uint64_t &overwritten)
{
    std::lock_guard<std::mutex> guard(lock_);
    overwritten = fault_records_.overwritten();
    return fault_records_.snapshot();
}

void Iommu::clear_fault_records()
{
    std::lock_guard<std::mutex> guard(lock_);
    fault_records_.clear();
}

IoguardDeviceInfo Iommu::read_device(uint16_t devid)
{
    IoguardDeviceInfo info{};
    DteLocation where;
    const auto dte = device_table_.load(devid, where);

    info.iommu_enabled = enabled_.load(std::memory_order_acquire);
    info.ga_enabled = ga_enabled_.load(std::memory_order_acquire);
    info.beyond_table = where.beyond_table;
    info.dte_address = where.beyond_table ? 0 : where.address;
    info.readable = dte.has_value();
    info.dma = dma_kind(dte);
    if (!dte) {
        return info;
    }
    if (const auto cached = device_table_.cached(devid)) {
        info.cached_copy_stale = cached->raw != dte->raw;
    }
    for (int i = 0; i < 4; i++) {
        info.raw[i] = dte->raw[i];
    }
    info.illegal = dte->illegal();
    info.valid = dte->valid();
    info.translation_valid = dte->translation_valid();
    info.read_allowed = dte->read_allowed();
    info.write_allowed = dte->write_allowed();
    info.mode = dte->mode();
    info.page_table_root = dte->page_table_root();
    info.domain_id = dte->domain_id();
    info.interrupt_valid = dte->interrupt_valid();
    info.interrupt_table_entries = dte->interrupt_table_len() <= kMaxIrtLen
                                       ? 1u << dte->interrupt_table_len()
                                       : 0;
    info.interrupt_table_root = dte->interrupt_table_root();
    info.interrupt_control = dte->interrupt_control();
    info.init_pass = dte->init_pass();
    info.extint_pass = dte->extint_pass();
    info.nmi_pass = dte->nmi_pass();
    info.lint0_pass = dte->lint0_pass();
    info.lint1_pass = dte->lint1_pass();
    info.guest_valid = dte->guest_valid();
    info.guest_io_valid = dte->guest_io_valid();
    info.ppr = dte->ppr_enabled();
    info.gcr3_levels = dte->gcr3_levels();
    info.gcr3_table_root = dte->gcr3_table_root();
    info.guest_paging_levels = guest_paging_levels(*dte);
    return info;
}

// The GCR3 table, read from guest memory: each level 512 entries of 8
// bytes, PASID bits 9 per level (at most three levels: 2^27 entries, so
// the walk stops at max found or at the table's end).
bool Iommu::for_each_pasid(uint16_t devid, unsigned max,
                           const std::function<void(const IoguardPasidEntry &)> &fn)
{
    DteLocation where;
    const auto dte = device_table_.load(devid, where);
    if (!dte || !dte->valid() || !dte->guest_valid() || dte->mode() != 0 ||
        dte->gcr3_levels() > 2) {
        return false;
    }
    unsigned found = 0;
    std::function<bool(uint64_t, int, uint32_t)> walk =
        [&](uint64_t table, int level, uint32_t prefix) {
            for (uint32_t i = 0; i < 512 && found < max; i++) {
                uint8_t buf[8];
                if (!host_.read_ram(table + i * 8, buf, sizeof(buf))) {
                    return false;
                }
                const uint64_t e = load_le64(buf);
                if (!(e & GCR3_VALID)) {
                    continue;
                }
                const uint32_t pasid = prefix << 9 | i;
                if (level > 0) {
                    if (!(e & GCR3_RESERVED) &&
                        !walk(e & GCR3_ADDR_MASK, level - 1, pasid)) {
                        return false;
                    }
                    continue;
                }
                fn(IoguardPasidEntry{pasid, e & GCR3_ADDR_MASK,
                                     (e & GCR3_RESERVED) != 0});
                found++;
            }
            return true;
        };
    walk(dte->gcr3_table_root(), int(dte->gcr3_levels()), 0);
    return true;
}

IoguardMappingWalk Iommu::walk_mappings(const MappingQuery &query,
                                        const MappingSink &sink)
{
    DteLocation where;
    const auto dte = device_table_.load(query.devid, where);
    IoguardMappingWalk result{};
    result.dma = query.pasid == kHostTables ? dma_kind(dte)
                                            : pasid_dma_kind(dte, query.pasid);

    MappingWalk walk;
    switch (result.dma) {
    case IOGUARD_DMA_BLOCKED:
        return result;
    case IOGUARD_DMA_UNTRANSLATED:
    case IOGUARD_DMA_PASSTHROUGH: {
        if (!query.coalesce) {
            return result;      // no page-table entries
        }
        const bool identity = result.dma == IOGUARD_DMA_UNTRANSLATED;
        const unsigned perm =
            identity ? unsigned(IOGUARD_PERM_RW)
                     : (dte->read_allowed() ? IOGUARD_PERM_READ : 0) |
                           (dte->write_allowed() ? IOGUARD_PERM_WRITE : 0);
        if (perm != IOGUARD_PERM_NONE && query.max_ranges > 0) {
            sink(IoguardMapping{query.start, ~uint64_t{0}, query.start, perm});
        }
        return result;
    }
    case IOGUARD_DMA_GUEST_TRANSLATED: {
        // Requests without a PASID go through PASID 0's tables (GIoV), as
        // user requests.
        const bool tagged = query.pasid != kHostTables;
        walk = walk_guest_mappings(
            host_, *dte, tagged ? query.pasid : 0,
            !tagged || !query.privileged, query.start, query.end,
            query.max_ranges, query.max_tables, query.coalesce, sink);
        break;
    }
    default:
        walk = ioguard::walk_mappings(
            host_, dte->page_table_root(), dte->mode(), dte->read_allowed(),
            dte->write_allowed(), query.start, query.end, query.max_ranges,
            query.max_tables, query.coalesce, sink);
        break;
    }
    result.truncated = walk.truncated;
    result.next_iova = walk.next_iova;
    result.tables_read = walk.tables_read;
    result.malformed = walk.malformed;
    return result;
}

unsigned Iommu::pasid_dma(uint16_t devid, uint32_t pasid)
{
    DteLocation where;
    return pasid_dma_kind(device_table_.load(devid, where), pasid);
}

// How a request with pasid goes, as translate_pasid decides it.
unsigned Iommu::pasid_dma_kind(const std::optional<DeviceTableEntry> &dte,
                               uint32_t pasid) const
{
    if (!enabled_.load(std::memory_order_acquire)) {
        return IOGUARD_DMA_UNTRANSLATED;
    }
    if (!dte) {
        return IOGUARD_DMA_BLOCKED;
    }
    if (!dte->valid()) {
        return IOGUARD_DMA_UNTRANSLATED;
    }
    if (dte->illegal() || guest_fields_illegal(*dte) ||
        !guest_fields_valid(*dte) || pasid > kMaxPasid) {
        return IOGUARD_DMA_BLOCKED;
    }
    return IOGUARD_DMA_GUEST_TRANSLATED;
}

bool Iommu::lookup_page(uint16_t devid, uint64_t iova, IoguardMapping &m)
{
    DteLocation where;
    const auto dte = device_table_.load(devid, where);
    const unsigned dma = dma_kind(dte);
    if (dma == IOGUARD_DMA_GUEST_TRANSLATED) {
        const GuestWalkResult walk = walk_guest(
            host_, *dte, GuestAccess{0, iova, false, true, false});
        const unsigned perm = (walk.read ? IOGUARD_PERM_READ : 0) |
                              (walk.write ? IOGUARD_PERM_WRITE : 0);
        if (walk.status != GuestWalkResult::Status::Ok ||
            perm == IOGUARD_PERM_NONE) {
            return false;
        }
        const uint64_t first = iova & ~(walk.page_size - 1);
        m = IoguardMapping{first, first + (walk.page_size - 1),
                           walk.page_base, perm};
        return true;
    }
    if (dma != IOGUARD_DMA_TRANSLATED) {
        return false;
    }
    const WalkResult walk = walk_v1(host_, dte->page_table_root(), dte->mode(),
                                    iova);
    const unsigned perm =
        (walk.read && dte->read_allowed() ? IOGUARD_PERM_READ : 0) |
        (walk.write && dte->write_allowed() ? IOGUARD_PERM_WRITE : 0);
    if (walk.status != WalkResult::Status::Ok || perm == IOGUARD_PERM_NONE) {
        return false;
    }
    const uint64_t first = iova & ~(walk.page_size - 1);
    m = IoguardMapping{first, first + (walk.page_size - 1), walk.page_base,
                       perm};
    return true;
}

bool Iommu::for_each_irte(uint16_t devid,
                          const std::function<void(const IoguardIrte &)> &fn)
{
    DteLocation where;
    const auto dte = device_table_.load(devid, where);
    if (!dte) {
        return false;
    }
    if (dte->illegal() || !dte->interrupt_valid()) {
        return true;    // no table in use
    }
    const bool wide = ga_enabled_.load(std::memory_order_acquire);
    const unsigned entry_size = wide ? 16 : 4;
    const unsigned entries = 1u << dte->interrupt_table_len();
    std::vector<uint8_t> table(size_t(entries) * entry_size);
    if (!host_.read_ram(dte->interrupt_table_root(), table.data(),
                        table.size())) {
        return false;
    }
    for (unsigned i = 0; i < entries; i++) {
        const uint8_t *e = table.data() + size_t(i) * entry_size;
        const uint64_t lo = wide ? load_le64(e) : load_le32(e);
        const uint64_t hi = wide ? load_le64(e + 8) : 0;
        if (lo == 0 && hi == 0) {
            continue;
        }
        const RemappedInterrupt r = wide ? decode_irte128(lo, hi)
                                         : decode_irte32(uint32_t(lo));
        fn(IoguardIrte{i, r.remap_enabled, r.suppress_fault, r.guest_mode,
                       r.dest_logical, r.int_type, r.destination, r.vector});
    }
    return true;
}

} // namespace ioguard
