#include "page_walker.hh"

#include "bits.hh"
#include "v1_pte.hh"

namespace ioguard {

namespace {

unsigned index_shift(unsigned level) { return 12 + 9 * (level - 1); }

WalkResult walk(Host &host, uint64_t table, unsigned level, bool read,
                bool write, uint64_t iova)
{
    WalkResult r;
    r.read = read;
    r.write = write;
    while (level >= 1) {
        const uint64_t index = (iova >> index_shift(level)) & 0x1ff;
        const uint64_t entry_addr = table + index * 8;
        uint8_t buf[8];
        r.entries_read++;
        if (!host.read_ram(entry_addr, buf, sizeof(buf))) {
            r.status = WalkResult::Status::TableReadError;
            r.error_address = entry_addr;
            return r;
        }
        const V1Pte pte = decode_v1_pte(load_le64(buf), level);
        if (pte.kind == V1Pte::Kind::NotPresent) {
            r.status = WalkResult::Status::NotPresent;
            return r;
        }
        if (pte.kind == V1Pte::Kind::Reserved) {
            r.status = WalkResult::Status::Reserved;
            return r;
        }
        r.read = r.read && pte.read;
        r.write = r.write && pte.write;
        if (pte.kind == V1Pte::Kind::Page) {
            r.page_size = pte.page_size;
            r.streaming = pte.streaming;
            r.page_base = pte.address;
            r.status = WalkResult::Status::Ok;
            return r;
        }
        const unsigned next = pte.next_level;
        // Skipped levels translate as if their index were 0; an IOVA that
        // uses them is outside what the tables describe.
        if (next < level - 1 &&
            bits(iova, index_shift(level) - 1, index_shift(next + 1)) != 0) {
            r.status = WalkResult::Status::OutOfRange;
            return r;
        }
        table = pte.address;
        if (level == 2 && next == 1) {
            r.l1_table = table;
            r.l1_read = r.read;
            r.l1_write = r.write;
        }
        level = next;
    }
    r.status = WalkResult::Status::NotPresent;
    return r;
}

} // namespace

WalkResult walk_v1(Host &host, uint64_t root, unsigned mode, uint64_t iova)
{
    if (mode < 6 && (iova >> index_shift(mode + 1)) != 0) {
        WalkResult r;
        r.status = WalkResult::Status::OutOfRange;
        return r;
    }
    return walk(host, root, mode, true, true, iova);
}

WalkResult walk_v1_from_l1(Host &host, uint64_t l1_table, bool read,
                           bool write, uint64_t iova)
{
    return walk(host, l1_table, 1, read, write, iova);
}

} // namespace ioguard
