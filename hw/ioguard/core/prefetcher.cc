// STREAMING mappings (docs/ioguard-streaming.rst). A translation is
// STREAMING when its leaf PTE has IOGUARD_PTE_STREAMING and the guest has
// set IOGUARD_CONTROL_STREAMING_EN, or when a host policy rule covers the
// requester and IOVA. On such a translation the prefetcher keeps the IOTLB
// filled with the translations of the next pages in the direction the
// requester is moving, up to prefetch_depth pages ahead, so that a
// sequential DMA stream finds its translations cached instead of waiting
// for a walk on each page. A stream starts prefetching once it has stepped
// from one page to its neighbour. It refills when half the window is used,
// with one walk that reads a run of neighbouring entries; it never crosses
// a not-present entry or a page that is not STREAMING, never caches a
// failure, and its entries are ordinary IOTLB entries for every
// invalidation.
#include <algorithm>

#include "bits.hh"
#include "hw/ioguard/amd-vi-regs.h"
#include "iommu.hh"

namespace ioguard {

namespace {

// One prefetch run: a walk reading `entries` entries (if it read any)
// that installed `issued` translations.
void count_prefetch(RequesterCounters *counters, unsigned entries,
                    unsigned issued)
{
    if (entries) {
        bump(counters, &RequesterCounters::prefetch_walks);
        bump(counters, &RequesterCounters::prefetch_walk_levels, entries);
    }
    bump(counters, &RequesterCounters::prefetch_issued, issued);
}

// How far `at` is beyond `from`, moving in direction.
uint64_t distance(uint64_t from, uint64_t at, int direction)
{
    return direction > 0 ? at - from : from - at;
}

} // namespace

bool Iommu::is_streaming(uint16_t devid, uint64_t iova,
                         bool pte_streaming) const
{
    return (pte_streaming && guest_streaming_.load(std::memory_order_relaxed)) ||
           policy_.matches(devid, iova);
}

void Iommu::after_translation(uint16_t devid, const DeviceTableEntry &dte,
                              uint64_t iova, unsigned perm,
                              const IotlbEntry &entry, unsigned walk_entries,
                              RequesterCounters *counters)
{
    bool pipelined = false;
    if (config_.prefetch_depth && is_streaming(devid, iova, entry.streaming)) {
        pipelined = prefetch_ahead(devid, dte, iova, entry,
                                   walk_entries != 0);
    }
    if (!config_.latency_model) {
        return;
    }
    const LatencyModel model{config_.round_trip_ns, config_.walk_read_ns,
                             config_.prefetch_depth};
    if (perm & IOGUARD_PERM_READ) {
        bump(counters, &RequesterCounters::model_reads);
        if (pipelined) {
            bump(counters, &RequesterCounters::model_pipelined_reads);
        }
        bump(counters, &RequesterCounters::model_read_ns,
             model.read_ns(walk_entries, pipelined));
    } else if (perm & IOGUARD_PERM_WRITE) {
        bump(counters, &RequesterCounters::model_writes);
        bump(counters, &RequesterCounters::model_write_ns,
             model.write_ns(walk_entries));
    }
}

// Which of a requester's streams the page at base belongs to: one whose
// last page is this page or a neighbour, or whose prefetched window holds
// it.
static Stream *find_stream(RequesterStreams &requester, uint16_t domain,
                           uint64_t base, uint64_t size)
{
    for (Stream &s : requester.streams) {
        if (!s.active || s.domain != domain) {
            continue;
        }
        const bool neighbour = base == s.last_base ||
                               base == s.last_base + s.last_size ||
                               base + size == s.last_base;
        const bool in_window = s.direction > 0
                                   ? base > s.last_base && base < s.frontier
                                   : base < s.last_base && base > s.frontier;
        if (neighbour || in_window) {
            return &s;
        }
    }
    return nullptr;
}

// Follows the stream iova belongs to (a device interleaves several: its
// queues and each buffer) and refills the window ahead of it. Returns
// whether this translation continues a stream: such reads pipeline in the
// latency model.
bool Iommu::prefetch_ahead(uint16_t devid, const DeviceTableEntry &dte,
                           uint64_t iova, const IotlbEntry &entry,
                           bool missed)
{
    const uint64_t page_size = uint64_t{1} << entry.page_shift;
    const uint64_t base = iova & ~(page_size - 1);
    const uint64_t window = uint64_t{config_.prefetch_depth} << 12;
    bool continues;
    int direction = 1;
    uint64_t next, from;
    size_t slot;
    {
        std::lock_guard<std::mutex> guard(streams_lock_);
        RequesterStreams &requester = streams_[devid];
        auto &streams = requester.streams;
        requester.forget_dead_ends(base, page_size);
        Stream *s = find_stream(requester, dte.domain_id(), base, page_size);
        continues = s != nullptr;
        if (!s) {
            // A new stream takes the place of the least recently used.
            s = &streams[0];
            for (Stream &other : streams) {
                if (other.last_use < s->last_use) {
                    s = &other;
                }
            }
            *s = Stream{};
            // A driver that maps each buffer just in time does so for all
            // of them: a new stream is as cautious as the requester's last
            // one (and its first productive refill ends that).
            s->empty_refills = requester.empty_refills;
            s->refills_to_skip = (1u << s->empty_refills) - 1;
        }
        slot = s - streams.data();
        s->last_use = ++stream_clock_;
        // A step to the page below moves the stream down, a step up moves
        // it up; a stream that has not stepped yet has no direction (0).
        const int was = continues ? s->direction : 0;
        const int step = !continues              ? 0
                         : base > s->last_base ? 1
                         : base < s->last_base ? -1
                                               : 0;
        const bool turned = step != 0 && was != 0 && step != was;
        direction = step ? step : was ? was : 1;
        const bool at_end = direction > 0 ? base + page_size == 0 : base == 0;
        next = direction > 0 ? base + page_size : base - 1;
        // The window ahead holds what was prefetched only while the stream
        // goes on the same way and finds its pages cached; a turn or a miss
        // (an invalidation took them) starts it again from here.
        const bool frontier_ahead =
            continues && !missed && was == direction && !at_end &&
            (direction > 0 ? s->frontier >= next : s->frontier <= next) &&
            distance(next, s->frontier, direction) <= window;
        s->active = true;
        s->domain = dte.domain_id();
        s->last_base = base;
        s->last_size = page_size;
        s->direction = step ? step : was;
        if (!frontier_ahead) {
            // A stream is confirmed by a step to a neighbouring page, so
            // that random DMA costs no prefetch walks. A turn takes that
            // back until the next step the same way: a device going back
            // and forth between two neighbouring pages (two queues) is not
            // streaming.
            s->frontier = next;
            s->stalled = at_end;
            s->confirmed = !turned && (s->confirmed || step != 0);
        }
        if (requester.is_dead_end(s->frontier)) {
            s->stalled = true;
        }
        if (!s->confirmed || s->stalled ||
            distance(next, s->frontier, direction) > window / 2) {
            return continues;
        }
        if (s->refills_to_skip) {
            s->refills_to_skip--;
            return continues;
        }
        from = s->frontier;
    }

    const uint64_t filled_at = iotlb_.epoch();
    uint64_t at = from;
    unsigned entries = 0, issued = 0;
    PrefetchStop stop = PrefetchStop::None;
    for (unsigned n = 0; n < config_.prefetch_depth &&
                         distance(next, at, direction) < window;
         n++) {
        uint64_t size = 0;
        bool installed = false;
        stop = prefetch_one(devid, dte, at, true, filled_at, size, entries,
                            installed);
        if (stop != PrefetchStop::None) {
            break;
        }
        issued += installed;
        const uint64_t first = at & ~(size - 1);
        if (direction > 0 ? first + size == 0 : first == 0) {
            stop = PrefetchStop::EndOfSpace;
            break;
        }
        at = direction > 0 ? first + size : first - 1;
    }
    count_prefetch(stats_.requester(devid), entries, issued);

    std::lock_guard<std::mutex> guard(streams_lock_);
    RequesterStreams &requester = streams_[devid];
    if (stop == PrefetchStop::Failed || stop == PrefetchStop::NotStreaming) {
        requester.add_dead_end(at);
    }
    Stream &s = requester.streams[slot];
    if (s.frontier != from || s.direction != direction) {
        return continues;   // another DMA moved or replaced the stream
    }
    s.frontier = at;
    s.stalled = stop != PrefetchStop::None;
    // A stream that runs right behind the driver's mappings (a driver that
    // maps each buffer just before its DMA, at the next IOVA) finds nothing
    // to prefetch, every time: back off exponentially, so that it costs a
    // walk only now and then.
    if (at == from && (stop == PrefetchStop::Failed ||
                       stop == PrefetchStop::NotStreaming)) {
        s.empty_refills = std::min(s.empty_refills + 1, kMaxEmptyRefillShift);
        s.refills_to_skip = (1u << s.empty_refills) - 1;
        requester.empty_refills = s.empty_refills;
    } else if (issued) {
        s.empty_refills = 0;
        requester.empty_refills = 0;
    }
    return continues;
}

// Puts the translation of the page holding iova into the IOTLB, marked as
// prefetched for devid, unless it is there already. Walks without
// reporting anything: a prefetch that fails is dropped, not logged.
Iommu::PrefetchStop Iommu::prefetch_one(uint16_t devid,
                                        const DeviceTableEntry &dte,
                                        uint64_t iova, bool require_streaming,
                                        uint64_t filled_at,
                                        uint64_t &page_size,
                                        unsigned &walk_entries,
                                        bool &installed)
{
    if (auto cached = iotlb_.peek(dte.domain_id(), iova)) {
        page_size = uint64_t{1} << cached->page_shift;
        return PrefetchStop::None;
    }
    bool from_directory = false;
    const WalkResult walk = walk_tables(dte, iova, from_directory);
    walk_entries += walk.entries_read;
    if (walk.status != WalkResult::Status::Ok) {
        return PrefetchStop::Failed;
    }
    if (require_streaming && !is_streaming(devid, iova, walk.streaming)) {
        return PrefetchStop::NotStreaming;
    }
    IotlbEntry entry = make_iotlb_entry(walk, dte);
    entry.prefetched = true;
    entry.prefetched_for = devid;
    iotlb_.insert(dte.domain_id(), iova, entry, filled_at);
    page_size = walk.page_size;
    installed = true;
    return PrefetchStop::None;
}

// PREFETCH_IOMMU_PAGES: fill the IOTLB with devid's translations of up to
// PFCount pages from Address (S=0), or of the naturally aligned range the
// address encodes (S=1, as INVALIDATE_IOMMU_PAGES), at most PFCount of
// them. Inval=1 drops the range's cached translations first. A page that
// does not translate ends the prefetch without an event: prefetching is a
// hint. GN=1 needs guest tables, which this IOMMU does not have (GTSup=0).
Iommu::CommandResult Iommu::prefetch_iommu_pages(const uint32_t cmd[4],
                                                 uint64_t addr)
{
    if ((cmd[0] & CMD_PREFETCH_DW0_RESERVED) || (cmd[1] & 0x0ff00000u) ||
        (cmd[2] & (CMD_PREFETCH_DW2_RESERVED | CMD_PREFETCH_GN_MASK))) {
        guest_error("PREFETCH_IOMMU_PAGES at 0x%llx has reserved bits or GN "
                    "set: %08x %08x %08x %08x", (unsigned long long)addr,
                    cmd[0], cmd[1], cmd[2], cmd[3]);
        log_event_locked(Event::illegal_command_error(addr),
                         FaultReason::IllegalCommand);
        return CommandResult::Stop;
    }
    const uint16_t devid = cmd[0] & 0xffff;
    const unsigned count = cmd[0] >> CMD_PREFETCH_PFCOUNT_SHIFT;
    IovaRange range = command_range(cmd[2], cmd[3]);
    if (!(cmd[2] & CMD_PREFETCH_SIZE_MASK) && count) {
        // PFCount pages, or up to the end of the address space.
        const uint64_t bytes = uint64_t{count} << 12;
        range.last = range.first > ~uint64_t{0} - bytes
                         ? ~uint64_t{0}
                         : range.first + bytes - 1;
    }
    DteLocation where;
    const auto dte = device_table_.read(devid, where);
    if (!dte || !dte->valid() || dte->illegal() || !dte->translation_valid() ||
        dte->mode() == 0) {
        return CommandResult::Done;     // nothing translated to prefetch
    }
    if (cmd[2] & CMD_PREFETCH_INVAL_MASK) {
        iotlb_.invalidate_iommu_pages(dte->domain_id(), range.first,
                                      range.last);
    }
    const uint64_t filled_at = iotlb_.epoch();
    unsigned entries = 0, issued = 0;
    uint64_t at = range.first;
    for (unsigned n = 0; n < count && at <= range.last; n++) {
        uint64_t size = 0;
        bool installed = false;
        if (prefetch_one(devid, *dte, at, false, filled_at, size, entries,
                         installed) != PrefetchStop::None) {
            break;
        }
        issued += installed;
        const uint64_t next = (at & ~(size - 1)) + size;
        if (next == 0) {
            break;
        }
        at = next;
    }
    count_prefetch(stats_.requester(devid), entries, issued);
    return CommandResult::Done;
}

} // namespace ioguard
