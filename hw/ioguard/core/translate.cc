// The DMA path: requester ID -> device table entry -> IOTLB or page walk.
#include "bits.hh"
#include "hw/ioguard/amd-vi-regs.h"
#include "guest_walker.hh"
#include "iommu.hh"
#include "page_walker.hh"

namespace ioguard {

namespace {

// Untranslated DMA is answered with a large identity page, so that QEMU asks
// once per gigabyte instead of once per 4 KiB.
constexpr uint64_t kIdentityMask = (uint64_t{1} << 30) - 1;

IoguardTranslation identity(uint64_t iova, unsigned perm)
{
    return IoguardTranslation{iova & ~kIdentityMask, kIdentityMask, perm};
}

// A refused access: no permission on the 4 KiB page holding iova.
IoguardTranslation blocked(uint64_t iova)
{
    return IoguardTranslation{iova & ~uint64_t{0xfff}, 0xfff,
                              IOGUARD_PERM_NONE};
}

// An access the device table refuses (it cannot be read, or it forbids
// or cannot take the request): counted so, no page touched.
IoguardTranslation refused_by_dte(RequesterCounters *counters, uint64_t iova)
{
    bump(counters, &RequesterCounters::faults);
    bump(counters, &RequesterCounters::refused_by_dte);
    return blocked(iova);
}

unsigned request_flags(unsigned perm)
{
    return (perm & IOGUARD_PERM_WRITE) ? EVENT_FLAG_RW : 0;
}

bool allowed(unsigned requested, bool read, bool write)
{
    return !((requested & IOGUARD_PERM_READ) && !read) &&
           !((requested & IOGUARD_PERM_WRITE) && !write);
}

unsigned perm_of(bool read, bool write)
{
    return (read ? IOGUARD_PERM_READ : 0) | (write ? IOGUARD_PERM_WRITE : 0);
}

} // namespace

// The DTE of devid for a request at addr. On failure the architected event
// has been logged and nullopt comes back.
std::optional<DeviceTableEntry> Iommu::fetch_dte(uint16_t devid, uint64_t addr,
                                                 unsigned flags)
{
    DteLocation where;
    const auto dte = device_table_.read(devid, where);
    if (!dte) {
        report_unreadable_dte(devid, addr, flags, where);
    }
    return dte;
}

void Iommu::report_unreadable_dte(uint16_t devid, uint64_t addr,
                                  unsigned flags, const DteLocation &where)
{
    if (where.beyond_table) {
        guest_error("requester %04x is beyond the device table", devid);
        log_event(Event::illegal_dev_table_entry(devid, addr, flags),
                  FaultReason::BeyondDeviceTable);
    } else {
        guest_error("device table entry of %04x at 0x%llx is not in RAM",
                    devid, (unsigned long long)where.address);
        log_event(Event::dev_tab_hardware_error(devid, where.address, flags),
                  FaultReason::DeviceTableNotInRam);
    }
}

bool Iommu::dma_is_identity(uint16_t devid)
{
    if (!enabled_.load(std::memory_order_acquire)) {
        return true;
    }
    if (faults_armed(FaultSite::Translate) ||
        faults_armed(FaultSite::DteFetch)) {
        return false;   // the rules want to see every DMA
    }
    DteLocation where;
    const auto dte = device_table_.read(devid, where);
    if (!dte || dte->illegal() || guest_fields_illegal(*dte)) {
        return false;
    }
    return !dte->valid() ||
           ((!dte->translation_valid() || dte->mode() == 0) &&
            !uses_guest_tables(*dte) && dte->read_allowed() &&
            dte->write_allowed());
}

std::optional<uint16_t> Iommu::translating_domain(uint16_t devid)
{
    if (!enabled_.load(std::memory_order_acquire)) {
        return std::nullopt;
    }
    DteLocation where;
    const auto dte = device_table_.read(devid, where);
    if (!dte || dte->illegal() || !dte->valid() ||
        !dte->translation_valid() ||
        (dte->mode() == 0 && !uses_guest_tables(*dte))) {
        return std::nullopt;
    }
    return dte->domain_id();
}

IotlbEntry make_iotlb_entry(const WalkResult &walk,
                            const DeviceTableEntry &dte)
{
    IotlbEntry e{};
    e.page_base = walk.page_base;
    e.page_shift = __builtin_ctzll(walk.page_size);
    e.read = walk.read && dte.read_allowed();
    e.write = walk.write && dte.write_allowed();
    e.dirty = true;
    e.streaming = walk.streaming;
    return e;
}

// (GV first: on the DMA path of a DTE without guest tables, one bit test.)
bool Iommu::guest_fields_valid(const DeviceTableEntry &dte) const
{
    return dte.guest_valid() && dte.valid() && dte.translation_valid() &&
           guest_translation_enabled_.load(std::memory_order_acquire);
}

bool Iommu::uses_guest_tables(const DeviceTableEntry &dte) const
{
    return guest_fields_valid(dte) && dte.guest_io_valid();
}

// The guest fields of a DTE with GV=1 that this IOMMU cannot use: more
// GCR3 levels than GLXSup offers, or a reserved guest paging mode.
bool Iommu::guest_fields_illegal(const DeviceTableEntry &dte) const
{
    return guest_fields_valid(dte) &&
           (dte.gcr3_levels() > ((efr_ >> FEATURE_GLX_SHIFT) & 3) ||
            guest_paging_levels(dte) == 0);
}

WalkResult Iommu::walk_tables(const DeviceTableEntry &dte, uint64_t iova,
                              bool &from_directory)
{
    const uint16_t domain = dte.domain_id();
    const uint64_t root = dte.page_table_root();
    if (auto dir = directory_cache_.lookup(domain, root, dte.mode(), iova)) {
        from_directory = true;
        return walk_v1_from_l1(host_, dir->l1_table, dir->read, dir->write,
                               iova);
    }
    from_directory = false;
    const uint64_t directory_filled_at = directory_cache_.epoch();
    const WalkResult walk = walk_v1(host_, root, dte.mode(), iova);
    if (walk.l1_table) {
        directory_cache_.insert(domain, iova,
                                {root, dte.mode(), walk.l1_table, walk.l1_read,
                                 walk.l1_write},
                                directory_filled_at);
    }
    return walk;
}

bool Iommu::is_streaming(uint16_t devid, uint64_t iova,
                         bool pte_streaming) const
{
    return (pte_streaming && guest_streaming_.load(std::memory_order_relaxed)) ||
           policy_.matches(devid, iova);
}

// PREFETCH_IOMMU_PAGES and the STREAMING prefetcher (observers.hh): walks
// without reporting anything, since a prefetch that fails is dropped, not
// logged.
PrefetchTarget::Stop Iommu::prefetch_page(uint16_t devid,
                                          const DeviceTableEntry &dte,
                                          uint64_t iova,
                                          bool require_streaming,
                                          uint64_t filled_at,
                                          uint64_t &page_size,
                                          unsigned &walk_entries,
                                          bool &installed)
{
    if (uses_guest_tables(dte)) {
        return Stop::Failed;    // the prefetcher knows host tables only
    }
    if (auto cached = iotlb_.peek(dte.domain_id(), iova)) {
        page_size = uint64_t{1} << cached->page_shift;
        return Stop::None;
    }
    bool from_directory = false;
    const WalkResult walk = walk_tables(dte, iova, from_directory);
    walk_entries += walk.entries_read;
    if (walk.status != WalkResult::Status::Ok) {
        return Stop::Failed;
    }
    if (require_streaming && !is_streaming(devid, iova, walk.streaming)) {
        return Stop::NotStreaming;
    }
    IotlbEntry entry = make_iotlb_entry(walk, dte);
    entry.prefetched = true;
    entry.prefetched_for = devid;
    iotlb_.insert(dte.domain_id(), iova, entry, filled_at);
    page_size = walk.page_size;
    installed = true;
    return Stop::None;
}

IoguardTranslation Iommu::fault(uint16_t devid, uint16_t domain,
                                uint64_t iova, unsigned flags, unsigned perm,
                                FaultReason reason)
{
    bump(stats_.requester(devid), &RequesterCounters::faults);
    if (perm != IOGUARD_PERM_NONE) {
        log_event(Event::io_page_fault(devid, domain, iova, flags), reason);
    }
    return blocked(iova);
}

// A table entry on iova's walk (v1, or guest: "page", "guest") is not
// RAM: PAGE_TAB_HARDWARE_ERROR at the entry's address.
IoguardTranslation Iommu::table_not_in_ram(uint16_t devid, uint16_t domain,
                                           uint64_t iova,
                                           uint64_t entry_address,
                                           unsigned flags, unsigned perm,
                                           const char *tables)
{
    guest_error("%s table entry at 0x%llx (requester %04x) is not in RAM",
                tables, (unsigned long long)entry_address, devid);
    bump(stats_.requester(devid), &RequesterCounters::faults);
    if (perm != IOGUARD_PERM_NONE) {
        log_event(Event::page_tab_hardware_error(devid, domain, entry_address,
                                                 flags),
                  FaultReason::PageTableNotInRam);
    }
    return blocked(iova);
}

IoguardTranslation Iommu::translate(uint16_t devid, uint64_t iova,
                                    unsigned perm)
{
    if (perm != IOGUARD_PERM_NONE && faults_armed(FaultSite::Translate) &&
        enabled_.load(std::memory_order_acquire)) {
        return translate_with_faults(
            devid, kHostTables, false, iova, perm,
            [&] { return translate_tables(devid, iova, perm); });
    }
    return translate_tables(devid, iova, perm);
}

// A translation that a site=translate rule may change
// (docs/ioguard-faults.rst): of a request without a PASID, or of an ATS
// translation request with one.
IoguardTranslation Iommu::translate_with_faults(
    uint16_t devid, uint32_t pasid, bool privileged, uint64_t iova,
    unsigned perm, const std::function<IoguardTranslation()> &tables)
{
    const auto fired = inject(FaultSite::Translate,
                              {devid, iova, perm == IOGUARD_PERM_WRITE});
    if (!fired) {
        const IoguardTranslation t = tables();
        remember_translation(devid, pasid, iova, t);
        return t;
    }
    switch (fired->action) {
    case FaultAction::Fault: {
        if (pasid != kHostTables) {
            // As a guest walk's fault: GN, the PASID for the domain.
            return fault(devid, pasid, iova,
                         request_flags(perm) | EVENT_FLAG_GN |
                             (privileged ? 0 : EVENT_FLAG_US),
                         perm, FaultReason::Injected);
        }
        DteLocation where;
        const auto dte = device_table_.read(devid, where);
        return fault(devid, dte ? dte->domain_id() : 0, iova,
                     request_flags(perm), perm, FaultReason::Injected);
    }
    case FaultAction::Corrupt: {
        // The 4 KiB page next to the right one, silently.
        const IoguardTranslation t = tables();
        if (t.perm == IOGUARD_PERM_NONE) {
            return t;
        }
        const uint64_t page = t.translated_addr +
                              (iova & t.addr_mask & ~uint64_t{0xfff});
        return IoguardTranslation{page ^ 0x1000, 0xfff, t.perm};
    }
    case FaultAction::Stale:
        if (const auto old = remembered_translation(devid, pasid, iova)) {
            return *old;
        }
        return tables();
    default:
        return tables();
    }
}

IoguardTranslation Iommu::translate_tables(uint16_t devid, uint64_t iova,
                                           unsigned perm)
{
    // Each translation is counted once, by its outcome (see statistics.hh).
    RequesterCounters *counters = stats_.requester(devid);
    const unsigned flags = request_flags(perm);

    if (!enabled_.load(std::memory_order_acquire)) {
        bump(counters, &RequesterCounters::passthrough);
        return identity(iova, IOGUARD_PERM_RW);
    }

    // Read before the DTE and the walk: a fill that an invalidation
    // overtakes is then dropped (see ShardedCache).
    const uint64_t filled_at = iotlb_.epoch();
    const bool write = perm == IOGUARD_PERM_WRITE;
    if (perm != IOGUARD_PERM_NONE && faults_armed(FaultSite::DteFetch) &&
        inject(FaultSite::DteFetch, {devid, iova, write})) {
        // As if the entry could not be read.
        const uint64_t dte_addr = device_table_.locate(devid).address;
        log_event(Event::dev_tab_hardware_error(devid, dte_addr, flags),
                  FaultReason::Injected);
        return refused_by_dte(counters, iova);
    }
    const auto dte = fetch_dte(devid, iova, flags);
    if (!dte) {
        return refused_by_dte(counters, iova);
    }
    if (!dte->valid()) {
        bump(counters, &RequesterCounters::passthrough);
        return identity(iova, IOGUARD_PERM_RW);
    }
    if (dte->illegal() || guest_fields_illegal(*dte)) {
        guest_error("device table entry of %04x has reserved bits set: "
                    "%016llx %016llx %016llx %016llx", devid,
                    (unsigned long long)dte->raw[0],
                    (unsigned long long)dte->raw[1],
                    (unsigned long long)dte->raw[2],
                    (unsigned long long)dte->raw[3]);
        if (perm != IOGUARD_PERM_NONE) {
            log_event(Event::illegal_dev_table_entry(devid, iova,
                                                     flags | EVENT_FLAG_RZ),
                      FaultReason::IllegalDeviceTableEntry);
        }
        return refused_by_dte(counters, iova);
    }
    if (uses_guest_tables(*dte)) {
        return translate_guest(devid, *dte, GuestRequest{0, true}, iova, perm,
                               filled_at);
    }
    const uint16_t domain = dte->domain_id();
    if (!dte->translation_valid() || dte->mode() == 0) {
        // Passthrough, gated by the DTE's IR/IW; IR=IW=0 is how Linux
        // blocks a device.
        if (!allowed(perm, dte->read_allowed(), dte->write_allowed())) {
            bump(counters, &RequesterCounters::refused_by_dte);
            return fault(devid, domain, iova,
                         flags | EVENT_FLAG_PR | EVENT_FLAG_PE, perm,
                         FaultReason::DeviceTablePermission);
        }
        bump(counters, &RequesterCounters::passthrough);
        return identity(iova, perm_of(dte->read_allowed(), dte->write_allowed()));
    }

    std::optional<IotlbEntry> entry = iotlb_.lookup(domain, iova);
    bool from_caches = true;    // the IOTLB or the page directory cache
    unsigned walk_entries = 0;  // read on the way of this DMA
    if (entry) {
        bump(counters, &RequesterCounters::iotlb_hits);
        if (entry->prefetched) {
            bump(counters, &RequesterCounters::prefetch_used);
        }
    } else {
        bump(counters, &RequesterCounters::iotlb_misses);
        if (perm != IOGUARD_PERM_NONE && faults_armed(FaultSite::PageWalk) &&
            inject(FaultSite::PageWalk, {devid, iova, write})) {
            // As if the walk's first read, in the root table, failed.
            const unsigned shift = 12 + 9 * (dte->mode() - 1);
            const uint64_t entry_addr =
                dte->page_table_root() +
                (shift < 64 ? (iova >> shift) & 0x1ff : 0) * 8;
            bump(counters, &RequesterCounters::faults);
            log_event(Event::page_tab_hardware_error(devid, domain, entry_addr,
                                                     flags),
                      FaultReason::Injected);
            return blocked(iova);
        }
        const WalkResult walk = walk_tables(*dte, iova, from_caches);
        walk_entries = walk.entries_read;
        bump(counters, &RequesterCounters::page_walk_levels,
             walk.entries_read);
        switch (walk.status) {
        case WalkResult::Status::Ok:
            break;
        case WalkResult::Status::NotPresent:
            return fault(devid, domain, iova, flags, perm,
                         FaultReason::NotPresent);
        case WalkResult::Status::OutOfRange:
            return fault(devid, domain, iova, flags, perm,
                         FaultReason::OutOfRange);
        case WalkResult::Status::Reserved:
            guest_error("page table of requester %04x (domain %u) has a "
                        "reserved encoding for IOVA 0x%llx", devid, domain,
                        (unsigned long long)iova);
            return fault(devid, domain, iova,
                         flags | EVENT_FLAG_PR | EVENT_FLAG_RZ, perm,
                         FaultReason::PageTableReserved);
        case WalkResult::Status::TableReadError:
            return table_not_in_ram(devid, domain, iova, walk.error_address,
                                    flags, perm, "page");
        }
        entry = make_iotlb_entry(walk, *dte);
        iotlb_.insert(domain, iova, *entry, filled_at);
    }
    if (!allowed(perm, entry->read, entry->write)) {
        return fault(devid, domain, iova,
                     flags | EVENT_FLAG_PR | EVENT_FLAG_PE, perm,
                     FaultReason::Permission);
    }
    if (!translation_observers_.empty()) {
        const Translation t{devid,  *dte,       iova,        perm,
                            *entry, from_caches, walk_entries, kHostTables};
        for (TranslationObserver *observer : translation_observers_) {
            observer->translated(t);
        }
    }
    return IoguardTranslation{entry->page_base,
                              (uint64_t{1} << entry->page_shift) - 1,
                              perm_of(entry->read, entry->write)};
}

// A request through a PASID's guest tables: one with a PASID prefix, or
// one without through PASID 0's (DTE.GIoV: Linux's amd_iommu=pgtbl_v2).
// Its events carry GN and the PASID in place of the domain, as the spec's
// event formats have it.
IoguardTranslation Iommu::translate_guest(uint16_t devid,
                                          const DeviceTableEntry &dte,
                                          GuestRequest request, uint64_t iova,
                                          unsigned perm, uint64_t filled_at)
{
    const uint32_t kPasid = request.pasid;
    RequesterCounters *counters = stats_.requester(devid);
    const uint16_t domain = dte.domain_id();
    const bool write = perm & IOGUARD_PERM_WRITE;
    const unsigned flags = request_flags(perm) | EVENT_FLAG_GN |
                           (request.user ? EVENT_FLAG_US : 0);
    // (fault() logs nothing for PERM_NONE.)
    const unsigned page_fault_perm =
        request.translation_request ? unsigned(IOGUARD_PERM_NONE) : perm;

    std::optional<IotlbEntry> entry = iotlb_.lookup(domain, iova, kPasid);
    unsigned walk_entries = 0;
    // A write through a clean leaf walks again, to set D.
    if (entry && !(write && !entry->dirty)) {
        bump(counters, &RequesterCounters::iotlb_hits);
    } else {
        bump(counters, &RequesterCounters::iotlb_misses);
        bump(counters, &RequesterCounters::guest_walks);
        const GuestWalkResult walk = walk_guest(
            host_, dte,
            GuestAccess{kPasid, iova, write, request.user,
                        perm != IOGUARD_PERM_NONE});
        walk_entries = walk.entries_read;
        bump(counters, &RequesterCounters::page_walk_levels,
             walk.entries_read);
        using Status = GuestWalkResult::Status;
        switch (walk.status) {
        case Status::Ok:
            break;
        case Status::Gcr3NotPresent:
        case Status::NotPresent:
            return fault(devid, kPasid, iova, flags, page_fault_perm,
                         FaultReason::NotPresent);
        case Status::OutOfRange:
            return fault(devid, kPasid, iova, flags, page_fault_perm,
                         FaultReason::OutOfRange);
        case Status::Reserved:
            guest_error("guest tables of requester %04x (PASID %u) have a "
                        "reserved encoding for address 0x%llx", devid,
                        kPasid, (unsigned long long)iova);
            return fault(devid, kPasid, iova,
                         flags | EVENT_FLAG_PR | EVENT_FLAG_RZ, perm,
                         FaultReason::PageTableReserved);
        case Status::NoAccess:
            return fault(devid, kPasid, iova,
                         flags | EVENT_FLAG_PR | EVENT_FLAG_PE,
                         page_fault_perm, FaultReason::Permission);
        case Status::HostFault:
            // The host tables refused a guest physical address on the way:
            // a host (GN=0) fault at that address.
            return fault(devid, domain, walk.error_address,
                         request_flags(perm), perm, FaultReason::NotPresent);
        case Status::TableReadError:
            return table_not_in_ram(devid, kPasid, iova, walk.error_address,
                                    flags, perm, "guest");
        }
        IotlbEntry fresh{};
        fresh.page_base = walk.page_base;
        fresh.page_shift = __builtin_ctzll(walk.page_size);
        fresh.read = walk.read;
        fresh.write = walk.write;
        fresh.dirty = walk.dirty;
        entry = fresh;
        // A page U/S keeps from user requests is not kept for a supervisor
        // request: the entry would serve the PASID's user requests too.
        // (Rare, and a flag in every entry made each IOTLB hit slower.)
        if (walk.user) {
            iotlb_.insert(domain, iova, fresh, filled_at, kPasid);
        }
    }
    if (!allowed(perm, entry->read, entry->write)) {
        return fault(devid, kPasid, iova,
                     flags | EVENT_FLAG_PR | EVENT_FLAG_PE, page_fault_perm,
                     FaultReason::Permission);
    }
    if (!translation_observers_.empty()) {
        const Translation t{devid,  dte, iova,        perm,
                            *entry, walk_entries == 0, walk_entries,
                            kPasid};
        for (TranslationObserver *observer : translation_observers_) {
            observer->translated(t);
        }
    }
    return IoguardTranslation{entry->page_base,
                              (uint64_t{1} << entry->page_shift) - 1,
                              perm_of(entry->read, entry->write)};
}

// An ATS translation request with a PASID prefix (a PASID-capable device:
// SVA). It goes through the PASID's guest tables; a DTE without them (GV
// clear, guest translation not enabled) cannot take it:
// INVALID_DEVICE_REQUEST. A page they do not give is "not present", no
// event: the device asks for it with a page request (as PCIe ATS has it,
// and as the RISC-V IOMMU specification says in so many words).
IoguardTranslation Iommu::translate_pasid(uint16_t devid, uint32_t pasid,
                                          bool privileged, uint64_t iova,
                                          unsigned perm)
{
    if (perm != IOGUARD_PERM_NONE && pasid <= kMaxPasid &&
        faults_armed(FaultSite::Translate) &&
        enabled_.load(std::memory_order_acquire)) {
        return translate_with_faults(devid, pasid, privileged, iova, perm, [&] {
            return translate_pasid_tables(devid, pasid, privileged, iova,
                                          perm);
        });
    }
    return translate_pasid_tables(devid, pasid, privileged, iova, perm);
}

IoguardTranslation Iommu::translate_pasid_tables(uint16_t devid,
                                                 uint32_t pasid,
                                                 bool privileged,
                                                 uint64_t iova, unsigned perm)
{
    RequesterCounters *counters = stats_.requester(devid);
    const unsigned flags = request_flags(perm) | EVENT_FLAG_GN |
                           (privileged ? 0 : EVENT_FLAG_US);
    if (!enabled_.load(std::memory_order_acquire)) {
        bump(counters, &RequesterCounters::passthrough);
        return identity(iova, IOGUARD_PERM_RW);
    }
    const uint64_t filled_at = iotlb_.epoch();
    const auto dte = fetch_dte(devid, iova, flags);
    if (!dte) {
        return refused_by_dte(counters, iova);
    }
    if (!dte->valid()) {
        bump(counters, &RequesterCounters::passthrough);
        return identity(iova, IOGUARD_PERM_RW);
    }
    if (dte->illegal() || guest_fields_illegal(*dte) ||
        !guest_fields_valid(*dte) || pasid > kMaxPasid) {
        if (perm != IOGUARD_PERM_NONE) {
            const bool illegal = dte->illegal() || guest_fields_illegal(*dte);
            guest_error("requester %04x made a request with PASID 0x%x, "
                        "which its device table entry %s", devid, pasid,
                        illegal ? "(reserved bits set) cannot take"
                                : "has no guest tables for");
            log_event(illegal ? Event::illegal_dev_table_entry(
                                    devid, iova, flags | EVENT_FLAG_RZ)
                              : Event::invalid_device_request(devid, pasid,
                                                              iova, flags),
                      illegal ? FaultReason::IllegalDeviceTableEntry
                              : FaultReason::InvalidDeviceRequest);
        }
        return refused_by_dte(counters, iova);
    }
    return translate_guest(devid, *dte,
                           GuestRequest{pasid, !privileged, true}, iova, perm,
                           filled_at);
}

} // namespace ioguard
