#include "guest_walker.hh"

#include "bits.hh"
#include "hw/ioguard/amd-vi-regs.h"
#include "page_walker.hh"

namespace ioguard {

using Status = GuestWalkResult::Status;

bool GuestPhysical::translate(uint64_t gpa, bool write, uint64_t &spa,
                              uint64_t &page_size, bool &readable,
                              bool &writable)
{
    if (!dte_.translation_valid() || dte_.mode() == 0) {
        spa = gpa;
        page_size = uint64_t{1} << 30;  // as untranslated DMA
        readable = writable = true;
        return true;
    }
    const WalkResult host = walk_v1(host_, dte_.page_table_root(),
                                    dte_.mode(), gpa);
    r_.entries_read += host.entries_read;
    if (host.status == WalkResult::Status::TableReadError) {
        r_.status = Status::TableReadError;
        r_.error_address = host.error_address;
        return false;
    }
    if (host.status != WalkResult::Status::Ok ||
        !(write ? host.write : host.read)) {
        r_.status = Status::HostFault;
        r_.error_address = gpa;
        return false;
    }
    spa = host.page_base + (gpa & (host.page_size - 1));
    page_size = host.page_size;
    readable = host.read;
    writable = host.write;
    return true;
}

bool GuestPhysical::read_entry(uint64_t gpa, uint64_t &value, uint64_t &spa,
                               bool &writable)
{
    uint64_t size;
    bool readable;
    if (!translate(gpa, false, spa, size, readable, writable)) {
        return false;
    }
    uint8_t buf[8];
    r_.entries_read++;
    if (!host_.read_ram(spa, buf, sizeof(buf))) {
        r_.status = Status::TableReadError;
        r_.error_address = spa;
        return false;
    }
    value = load_le64(buf);
    return true;
}

void GuestPhysical::write_entry(uint64_t spa, uint64_t value)
{
    uint8_t buf[8];
    store_le64(buf, value);
    host_.write_ram(spa, buf, sizeof(buf));
}

bool find_guest_cr3(GuestPhysical &mem, const DeviceTableEntry &dte,
                    uint32_t pasid, GuestWalkResult &r, uint64_t &cr3)
{
    const unsigned levels = dte.gcr3_levels();     // below the root
    if (levels > 2 || (uint64_t{pasid} >> (9 * (levels + 1))) != 0) {
        r.status = levels > 2 ? Status::Reserved : Status::OutOfRange;
        return false;
    }
    uint64_t table = dte.gcr3_table_root();
    for (int level = int(levels); level >= 0; level--) {
        const uint64_t index = (pasid >> (9 * level)) & 0x1ff;
        uint64_t entry, spa;
        bool writable;
        if (!mem.read_entry(table + index * 8, entry, spa, writable)) {
            return false;
        }
        if (!(entry & GCR3_VALID)) {
            r.status = Status::Gcr3NotPresent;
            return false;
        }
        if (entry & GCR3_RESERVED) {
            r.status = Status::Reserved;
            return false;
        }
        table = entry & GCR3_ADDR_MASK;
    }
    cr3 = table;
    return true;
}

namespace {

// Whether the guest virtual address is one the levels translate. For PASID
// 0 (Linux's DMA API tables) the bits above them must be 0: no sign
// extension, as Linux's v2 aperture expects (drivers/iommu/amd/iommu.c,
// dma_max_address). Other PASIDs are process address spaces and must be
// sign-extended, as on the processor.
bool in_range(uint64_t address, unsigned levels, uint32_t pasid)
{
    const unsigned width = v2_index_shift(levels + 1);     // 48 or 57
    const uint64_t upper = address >> (width - 1);
    if (pasid == 0) {
        return (address >> width) == 0;
    }
    return upper == 0 || upper == (~uint64_t{0} >> (width - 1));
}

} // namespace

bool v2_reserved(uint64_t entry, unsigned level)
{
    if (!(entry & IOMMU_PAGE_PSE) || level == 1) {
        return false;
    }
    if (level > 3) {
        return true;
    }
    // A large page's address bits below its size, above the PAT bit (12)
    return bits(entry, v2_index_shift(level) - 1, 13) != 0;
}

unsigned guest_paging_levels(const DeviceTableEntry &dte)
{
    switch (dte.guest_paging_mode()) {
    case GUEST_PGTABLE_4_LEVEL: return 4;
    case GUEST_PGTABLE_5_LEVEL: return 5;
    default: return 0;
    }
}

GuestWalkResult walk_guest(Host &host, const DeviceTableEntry &dte,
                           const GuestAccess &access)
{
    GuestWalkResult r;
    GuestPhysical mem(host, dte, r);
    const unsigned levels = guest_paging_levels(dte);
    if (levels == 0) {
        r.status = Status::Reserved;
        return r;
    }
    if (!in_range(access.address, levels, access.pasid)) {
        r.status = Status::OutOfRange;
        return r;
    }
    uint64_t table;
    if (!find_guest_cr3(mem, dte, access.pasid, r, table)) {
        return r;
    }

    // The entries on the way, for the Accessed and Dirty updates.
    struct Visited {
        uint64_t spa;
        uint64_t value;
        bool writable;      // the host tables let the device write it
    };
    Visited visited[5];
    unsigned nvisited = 0;
    bool writable = true, user = true;
    uint64_t leaf = 0;
    unsigned level = levels;
    for (;; level--) {
        const uint64_t index =
            (access.address >> v2_index_shift(level)) & 0x1ff;
        uint64_t entry, spa;
        bool entry_writable;
        if (!mem.read_entry(table + index * 8, entry, spa, entry_writable)) {
            return r;
        }
        if (!(entry & IOMMU_PAGE_PRESENT)) {
            r.status = Status::NotPresent;
            return r;
        }
        if (v2_reserved(entry, level)) {
            r.status = Status::Reserved;
            return r;
        }
        visited[nvisited++] = {spa, entry, entry_writable};
        writable = writable && (entry & IOMMU_PAGE_RW);
        user = user && (entry & IOMMU_PAGE_USER);
        if (level == 1 || (entry & IOMMU_PAGE_PSE)) {
            leaf = entry;
            break;
        }
        table = entry & IOMMU_PAGE_ADDR_MASK;
    }
    if ((access.write && !writable) || (access.user && !user)) {
        r.status = Status::NoAccess;
        return r;
    }

    // The guest page, then the host page under it.
    const uint64_t guest_size = uint64_t{1} << v2_index_shift(level);
    const uint64_t gpa = (leaf & IOMMU_PAGE_ADDR_MASK & ~(guest_size - 1)) |
                         (access.address & (guest_size - 1));
    uint64_t spa, host_size;
    bool host_read, host_write;
    if (!mem.translate(gpa, access.write, spa, host_size, host_read,
                       host_write)) {
        return r;
    }
    const bool read = host_read && dte.read_allowed();
    const bool write = writable && host_write && dte.write_allowed();
    // An access that moves data is refused here, before its Accessed and
    // Dirty bits are set, when the host tables or the DTE's IR/IW forbid
    // it too.
    if (access.sets_accessed && !(access.write ? write : read)) {
        r.status = Status::NoAccess;
        return r;
    }

    for (unsigned i = 0; i < nvisited && access.sets_accessed; i++) {
        uint64_t value = visited[i].value | IOMMU_PAGE_ACCESS;
        if (i == nvisited - 1 && access.write) {
            value |= IOMMU_PAGE_DIRTY;
        }
        // (Where the host tables make a guest table read-only, its bits
        // stay as they are.)
        if (value != visited[i].value && visited[i].writable) {
            mem.write_entry(visited[i].spa, value);
            visited[i].value = value;
        }
    }

    r.status = Status::Ok;
    r.page_size = guest_size < host_size ? guest_size : host_size;
    r.page_base = spa & ~(r.page_size - 1);
    r.read = read;
    r.write = write;
    r.dirty = visited[nvisited - 1].value & IOMMU_PAGE_DIRTY;
    r.user = user;
    return r;
}

} // namespace ioguard
