#include "mapping_walker.hh"

#include <algorithm>

#include "bits.hh"
#include "v1_pte.hh"

namespace ioguard {

namespace {

constexpr unsigned kEntries = 512;

unsigned index_shift(unsigned level) { return 12 + 9 * (level - 1); }

class Walker {
public:
    Walker(Host &host, uint64_t start, uint64_t end, uint64_t max_ranges,
           uint64_t max_tables, bool coalesce, const MappingSink &sink)
        : host_(host), start_(start), end_(end), max_ranges_(max_ranges),
          max_tables_(max_tables), coalesce_(coalesce), sink_(sink)
    {
    }

    // The level-`level` table at `table` translates [base, last]. Returns
    // false once the walk stopped early.
    bool visit(uint64_t table, unsigned level, uint64_t base, uint64_t last,
               bool read, bool write);

    // Hands over the range being coalesced; returns the result.
    MappingWalk finish()
    {
        if (have_pending_ && !result_.truncated) {
            sink_(pending_);
        }
        return result_;
    }

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

    Host &host_;
    const uint64_t start_, end_, max_ranges_, max_tables_;
    const bool coalesce_;
    const MappingSink &sink_;
    MappingWalk result_;
    IoguardMapping pending_{};
    bool have_pending_ = false;
    uint64_t ranges_ = 0;
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

bool Walker::visit(uint64_t table, unsigned level, uint64_t base,
                   uint64_t last, bool read, bool write)
{
    if (result_.tables_read == max_tables_) {
        return stop_at(std::max(base, start_));
    }
    result_.tables_read++;
    // The whole table at once; entry by entry if part of it is not RAM,
    // as the translation walk reads it.
    uint8_t buf[kEntries * 8];
    const bool whole = host_.read_ram(table, buf, sizeof(buf));
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
        if (!whole && !host_.read_ram(table + 8 * i, buf + 8 * i, 8)) {
            result_.malformed++;
            continue;
        }
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
            const uint64_t from =
                coalesce_ ? std::max(entry_base, start_) : entry_base;
            const uint64_t target = pte.address +
                                    (from & (pte.page_size - 1));
            if (!emit(from, entry_last, target,
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

} // namespace

MappingWalk walk_mappings(Host &host, uint64_t root, unsigned mode,
                          bool dte_read, bool dte_write, uint64_t start,
                          uint64_t end, uint64_t max_ranges,
                          uint64_t max_tables, bool coalesce,
                          const MappingSink &sink)
{
    const uint64_t last = mode >= 6 ? ~uint64_t{0}
                                    : (uint64_t{1} << index_shift(mode + 1)) - 1;
    Walker walker(host, start, end, max_ranges, max_tables, coalesce, sink);
    if (mode >= 1 && mode <= 6 && start <= last) {
        walker.visit(root, mode, 0, last, dte_read, dte_write);
    }
    return walker.finish();
}

} // namespace ioguard
