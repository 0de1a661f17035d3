#include "mapping_walker.hh"

#include <algorithm>

#include "bits.hh"
#include "guest_walker.hh"
#include "hw/ioguard/amd-vi-regs.h"
#include "page_walker.hh"
#include "v1_pte.hh"

namespace ioguard {

namespace {

constexpr unsigned kEntries = 512;

unsigned index_shift(unsigned level) { return 12 + 9 * (level - 1); }

// What both walks share: the ranges found, coalesced (or not), within
// start..end and the budgets.
class Walker {
public:
    Walker(Host &host, uint64_t start, uint64_t end, uint64_t max_ranges,
           uint64_t max_tables, bool coalesce, const MappingSink &sink)
        : host_(host), start_(start), end_(end), max_ranges_(max_ranges),
          max_tables_(max_tables), coalesce_(coalesce), sink_(sink)
    {
    }

    // Hands over the range being coalesced; returns the result.
    MappingWalk finish()
    {
        if (have_pending_ && !result_.truncated) {
            sink_(pending_);
        }
        return result_;
    }

protected:
    // A page of the tables, [iova, last] to target with perm, whole
    // (coalesced: from start on).
    bool emit_page(uint64_t iova, uint64_t last, uint64_t target,
                   unsigned perm)
    {
        const uint64_t from = coalesce_ ? std::max(iova, start_) : iova;
        return emit(from, last, target + (from - iova), perm);
    }
    // Counts one more table (or host walk) read from iova on; false once
    // the budget is spent.
    bool take_table(uint64_t iova)
    {
        if (result_.tables_read == max_tables_) {
            return stop_at(std::max(iova, start_));
        }
        result_.tables_read++;
        return true;
    }

    Host &host_;
    const uint64_t start_, end_;
    MappingWalk result_;

private:
    bool emit(uint64_t iova, uint64_t last, uint64_t target, unsigned perm);
    bool stop_at(uint64_t iova)
    {
        if (have_pending_) {
            sink_(pending_);
            have_pending_ = false;
        }
        result_.truncated = true;
        result_.next_iova = iova;
        return false;
    }

    const uint64_t max_ranges_, max_tables_;
    const bool coalesce_;
    const MappingSink &sink_;
    IoguardMapping pending_{};
    bool have_pending_ = false;
    uint64_t ranges_ = 0;
};

// The v1 (host) tables, deciding as page_walker.cc does.
class V1Walker : public Walker {
public:
    using Walker::Walker;

    // The level-`level` table at `table` translates [base, last]. Returns
    // false once the walk stopped early.
    bool visit(uint64_t table, unsigned level, uint64_t base, uint64_t last,
               bool read, bool write);
};

bool Walker::emit(uint64_t iova, uint64_t last, uint64_t target,
                  unsigned perm)
{
    if (perm == IOGUARD_PERM_NONE) {
        return true;    // present, but no access gets through
    }
    if (coalesce_ && have_pending_ && pending_.last + 1 == iova &&
        pending_.target + (pending_.last - pending_.iova) + 1 == target &&
        pending_.perm == perm) {
        pending_.last = last;
        return true;
    }
    if (have_pending_) {
        sink_(pending_);
        have_pending_ = false;
    }
    if (ranges_ == max_ranges_) {
        return stop_at(iova);
    }
    ranges_++;
    pending_ = IoguardMapping{iova, last, target, perm};
    have_pending_ = true;
    return true;
}

bool V1Walker::visit(uint64_t table, unsigned level, uint64_t base,
                     uint64_t last, bool read, bool write)
{
    if (!take_table(base)) {
        return false;
    }
    // The whole table at once: a table is a 4 KiB page, RAM whole or not
    // at all (then the walk would refuse each of its entries).
    uint8_t buf[kEntries * 8];
    if (!host_.read_ram(table, buf, sizeof(buf))) {
        result_.malformed++;
        return true;
    }
    const uint64_t entry_size = level_entry_size(level);
    const unsigned first = start_ > base
                               ? unsigned((start_ - base) >> index_shift(level))
                               : 0;
    for (unsigned i = first; i < kEntries; i++) {
        const uint64_t entry_base = base + uint64_t(i) * entry_size;
        if (i > 0 && (entry_base <= base || entry_base > last)) {
            break;      // past what this table translates (or wrapped)
        }
        if (entry_base > end_) {
            return false;   // past what was asked for: done
        }
        const uint64_t entry_last = std::min(last, entry_base + (entry_size - 1));
        const V1Pte pte = decode_v1_pte(load_le64(buf + 8 * i), level);
        if (pte.kind == V1Pte::Kind::NotPresent) {
            continue;
        }
        if (pte.kind == V1Pte::Kind::Reserved) {
            result_.malformed++;
            continue;
        }
        const bool r = read && pte.read;
        const bool w = write && pte.write;
        if (pte.kind == V1Pte::Kind::Page) {
            const uint64_t target = pte.address +
                                    (entry_base & (pte.page_size - 1));
            if (!emit_page(entry_base, entry_last, target,
                           (r ? IOGUARD_PERM_READ : 0) |
                               (w ? IOGUARD_PERM_WRITE : 0))) {
                return false;
            }
            continue;
        }
        // A skipping PDE: only IOVAs whose skipped index bits are 0 exist.
        const uint64_t child_last =
            std::min(entry_last,
                     entry_base + (level_entry_size(pte.next_level + 1) - 1));
        if (child_last < start_) {
            continue;
        }
        if (!visit(pte.address, pte.next_level, entry_base, child_last, r, w)) {
            return false;
        }
    }
    return true;
}

// A PASID's v2 tables, deciding as guest_walker.cc does: R/W and U/S
// ANDed down the walk, then with what the host tables (DTE Mode 1..6)
// and the DTE's IR/IW allow. Each table address and each guest page goes
// through the host tables, which may cut a guest page into smaller pieces;
// every host walk counts as a table read, so that a large guest page over
// small host pages is bounded by the same budget.
class V2Walker : public Walker {
public:
    V2Walker(Host &host, const DeviceTableEntry &dte, bool user,
             uint64_t start, uint64_t end, uint64_t max_ranges,
             uint64_t max_tables, bool coalesce, const MappingSink &sink)
        : Walker(host, start, end, max_ranges, max_tables, coalesce, sink),
          dte_(dte), user_(user),
          nested_(dte.translation_valid() && dte.mode() != 0)
    {
    }

    // The level-`level` table at guest physical `table`, whose entry i
    // begins at base + i entries (at the top of a process's tables, the
    // upper half sign-extended). Returns false once the walk stopped early.
    bool visit(uint64_t table, unsigned level, uint64_t base, bool top,
               bool sign_extend, bool writable, bool user_ok);

private:
    bool guest_page(uint64_t iova, uint64_t size, uint64_t gpa,
                    bool writable);

    const DeviceTableEntry &dte_;
    const bool user_;       // user requests: U/S must allow them
    const bool nested_;
};

bool V2Walker::visit(uint64_t table, unsigned level, uint64_t base, bool top,
                     bool sign_extend, bool writable, bool user_ok)
{
    if (!take_table(base)) {
        return false;
    }
    GuestWalkResult scratch;
    GuestPhysical mem(host_, dte_, scratch);
    uint64_t spa, size;
    bool readable, host_writable;
    if (nested_ && !take_table(base)) {
        return false;
    }
    if (!mem.translate(table, false, spa, size, readable, host_writable)) {
        result_.malformed++;    // the walk would fault on this table
        return true;
    }
    // (A v2 table is a 4 KiB page: RAM whole, or not at all.)
    uint8_t buf[kEntries * 8];
    if (!host_.read_ram(spa, buf, sizeof(buf))) {
        result_.malformed++;
        return true;
    }
    const unsigned shift = v2_index_shift(level);
    const uint64_t entry_size = uint64_t{1} << shift;
    for (unsigned i = 0; i < kEntries; i++) {
        uint64_t entry_base = base + (uint64_t(i) << shift);
        if (top && sign_extend && i >= kEntries / 2) {
            // The upper half of a process address space.
            entry_base |= ~uint64_t{0} << (shift + 9);
        }
        const uint64_t entry_last = entry_base + (entry_size - 1);
        if (entry_last < start_) {
            continue;
        }
        if (entry_base > end_) {
            return false;   // past what was asked for: done
        }
        const uint64_t entry = load_le64(buf + 8 * i);
        if (!(entry & IOMMU_PAGE_PRESENT)) {
            continue;
        }
        if (v2_reserved(entry, level)) {
            result_.malformed++;
            continue;
        }
        const bool w = writable && (entry & IOMMU_PAGE_RW);
        const bool u = user_ok && (entry & IOMMU_PAGE_USER);
        if (user_ && !u) {
            continue;       // no user request gets through
        }
        if (level == 1 || (entry & IOMMU_PAGE_PSE)) {
            const uint64_t gpa =
                entry & IOMMU_PAGE_ADDR_MASK & ~(entry_size - 1);
            if (!guest_page(entry_base, entry_size, gpa, w)) {
                return false;
            }
            continue;
        }
        if (!visit(entry & IOMMU_PAGE_ADDR_MASK, level - 1, entry_base,
                   false, false, w, u)) {
            return false;
        }
    }
    return true;
}

// The guest page [iova, iova + size) at gpa, in the host pages under it.
bool V2Walker::guest_page(uint64_t iova, uint64_t size, uint64_t gpa,
                          bool writable)
{
    if (!nested_) {
        const unsigned perm =
            (dte_.read_allowed() ? IOGUARD_PERM_READ : 0) |
            (writable && dte_.write_allowed() ? IOGUARD_PERM_WRITE : 0);
        return emit_page(iova, iova + (size - 1), gpa, perm);
    }
    uint64_t at = 0;
    if (iova < start_) {
        at = (start_ - iova) & ~uint64_t{0xfff};
    }
    while (at < size) {
        if (iova + at > end_) {
            return false;
        }
        if (!take_table(iova + at)) {
            return false;
        }
        const WalkResult host = walk_v1(host_, dte_.page_table_root(),
                                        dte_.mode(), gpa + at);
        if (host.status != WalkResult::Status::Ok) {
            if (host.status != WalkResult::Status::NotPresent &&
                host.status != WalkResult::Status::OutOfRange) {
                result_.malformed++;
            }
            at += 0x1000;   // (a failed walk does not say how far)
            continue;
        }
        const uint64_t offset = (gpa + at) & (host.page_size - 1);
        const uint64_t piece = std::min(size - at, host.page_size - offset);
        const unsigned perm =
            (host.read && dte_.read_allowed() ? IOGUARD_PERM_READ : 0) |
            (writable && host.write && dte_.write_allowed()
                 ? IOGUARD_PERM_WRITE : 0);
        if (!emit_page(iova + at, iova + at + (piece - 1),
                       host.page_base + offset, perm)) {
            return false;
        }
        at += piece;
    }
    return true;
}

} // namespace

MappingWalk walk_guest_mappings(Host &host, const DeviceTableEntry &dte,
                                uint32_t pasid, bool user, uint64_t start,
                                uint64_t end, uint64_t max_ranges,
                                uint64_t max_tables, bool coalesce,
                                const MappingSink &sink)
{
    V2Walker walker(host, dte, user, start, end, max_ranges, max_tables,
                    coalesce, sink);
    const unsigned levels = guest_paging_levels(dte);
    GuestWalkResult r;
    GuestPhysical mem(host, dte, r);
    uint64_t cr3;
    if (levels == 0) {
        MappingWalk reserved;
        reserved.malformed = 1;
        return reserved;
    }
    if (!find_guest_cr3(mem, dte, pasid, r, cr3)) {
        MappingWalk none;
        using Status = GuestWalkResult::Status;
        none.malformed = r.status != Status::Gcr3NotPresent &&
                         r.status != Status::OutOfRange;
        return none;
    }
    // PASID 0 (requests without a PASID, Linux's DMA API tables) is not
    // sign-extended; process address spaces are (guest_walker.cc).
    walker.visit(cr3, levels, 0, true, pasid != 0, true, true);
    return walker.finish();
}

MappingWalk walk_mappings(Host &host, uint64_t root, unsigned mode,
                          bool dte_read, bool dte_write, uint64_t start,
                          uint64_t end, uint64_t max_ranges,
                          uint64_t max_tables, bool coalesce,
                          const MappingSink &sink)
{
    const uint64_t last = mode >= 6 ? ~uint64_t{0}
                                    : (uint64_t{1} << index_shift(mode + 1)) - 1;
    V1Walker walker(host, start, end, max_ranges, max_tables, coalesce, sink);
    if (mode >= 1 && mode <= 6 && start <= last) {
        walker.visit(root, mode, 0, last, dte_read, dte_write);
    }
    return walker.finish();
}

} // namespace ioguard
