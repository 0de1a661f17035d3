#include <algorithm>

#include "device_table.hh"
#include "iotlb.hh"
#include "prefetcher.hh"

namespace ioguard {

namespace {

// How far `at` is beyond `from`, moving in direction.
uint64_t distance(uint64_t from, uint64_t at, int direction)
{
    return direction > 0 ? at - from : from - at;
}

} // namespace

void Prefetcher::translated(const Translation &t)
{
    bool pipelined = false;
    if (config_.depth && core_.is_streaming(t.devid, t.iova, t.entry.streaming)) {
        pipelined = prefetch_ahead(t.devid, t.dte, t.iova, t.entry,
                                   t.walk_entries != 0);
    }
    if (!config_.latency_model) {
        return;
    }
    const LatencyModel model{config_.round_trip_ns, config_.walk_read_ns,
                             config_.depth};
    RequesterCounters *counters = stats_.requester(t.devid);
    const unsigned walk_entries = t.walk_entries;
    if (t.perm & IOGUARD_PERM_READ) {
        bump(counters, &RequesterCounters::model_reads);
        if (pipelined) {
            bump(counters, &RequesterCounters::model_pipelined_reads);
        }
        bump(counters, &RequesterCounters::model_read_ns,
             model.read_ns(walk_entries, pipelined));
    } else if (t.perm & IOGUARD_PERM_WRITE) {
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
bool Prefetcher::prefetch_ahead(uint16_t devid, const DeviceTableEntry &dte,
                                uint64_t iova, const IotlbEntry &entry,
                                bool missed)
{
    const uint64_t page_size = uint64_t{1} << entry.page_shift;
    const uint64_t base = iova & ~(page_size - 1);
    const uint64_t window = uint64_t{config_.depth} << 12;
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

    const uint64_t filled_at = core_.iotlb_epoch();
    uint64_t at = from;
    unsigned entries = 0, issued = 0;
    PrefetchTarget::Stop stop = PrefetchTarget::Stop::None;
    for (unsigned n = 0; n < config_.depth &&
                         distance(next, at, direction) < window;
         n++) {
        uint64_t size = 0;
        bool installed = false;
        stop = core_.prefetch_page(devid, dte, at, true, filled_at, size,
                                   entries, installed);
        if (stop != PrefetchTarget::Stop::None) {
            break;
        }
        issued += installed;
        const uint64_t first = at & ~(size - 1);
        if (direction > 0 ? first + size == 0 : first == 0) {
            stop = PrefetchTarget::Stop::EndOfSpace;
            break;
        }
        at = direction > 0 ? first + size : first - 1;
    }
    count_prefetch(stats_.requester(devid), entries, issued);

    std::lock_guard<std::mutex> guard(streams_lock_);
    RequesterStreams &requester = streams_[devid];
    if (stop == PrefetchTarget::Stop::Failed || stop == PrefetchTarget::Stop::NotStreaming) {
        requester.add_dead_end(at);
    }
    Stream &s = requester.streams[slot];
    if (s.frontier != from || s.direction != direction) {
        return continues;   // another DMA moved or replaced the stream
    }
    s.frontier = at;
    s.stalled = stop != PrefetchTarget::Stop::None;
    // A stream that runs right behind the driver's mappings (a driver that
    // maps each buffer just before its DMA, at the next IOVA) finds nothing
    // to prefetch, every time: back off exponentially, so that it costs a
    // walk only now and then.
    if (at == from && (stop == PrefetchTarget::Stop::Failed ||
                       stop == PrefetchTarget::Stop::NotStreaming)) {
        s.empty_refills = std::min(s.empty_refills + 1, kMaxEmptyRefillShift);
        s.refills_to_skip = (1u << s.empty_refills) - 1;
        requester.empty_refills = s.empty_refills;
    } else if (issued) {
        s.empty_refills = 0;
        requester.empty_refills = 0;
    }
    return continues;
}

void Prefetcher::forget()
{
    std::lock_guard<std::mutex> guard(streams_lock_);
    streams_.clear();
}

} // namespace ioguard
