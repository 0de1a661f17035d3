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
//
// The prefetcher hears the core's translations (observers.hh) and fills
// the IOTLB through it (PrefetchTarget); it also runs the latency model,
// whose reads pipeline along a stream.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "observers.hh"
#include "statistics.hh"

namespace ioguard {

struct Stream {
    bool active = false;
    uint16_t domain = 0;
    // The page of the last translation (any page size).
    uint64_t last_base = 0;
    uint64_t last_size = 0;
    int direction = 0;          // +1 up, -1 down, 0 not moved yet
    // Stepped from a page to its neighbour since the stream (re)started or
    // turned: only then does the prefetcher run.
    bool confirmed = false;
    // The next IOVA to prefetch, in direction; prefetched up to there.
    uint64_t frontier = 0;
    // The prefetcher stopped at the frontier (not present, not STREAMING,
    // the end of the address space): no refill until the stream moves on.
    bool stalled = false;
    // Refills in a row that found the first page ahead unmapped, and how
    // many refills to skip because of them (exponential back-off).
    unsigned empty_refills = 0;
    unsigned refills_to_skip = 0;
    uint64_t last_use = 0;      // for replacement
};

// A stream that keeps finding nothing ahead tries at least every 2^5 = 32nd
// time it would refill.
constexpr unsigned kMaxEmptyRefillShift = 5;

// A device interleaves streams (its queues, each buffer): the prefetcher
// follows this many per requester.
constexpr size_t kStreamsPerRequester = 4;

struct RequesterStreams {
    std::array<Stream, kStreamsPerRequester> streams;
    // Where the requester's last prefetches failed (not present, not
    // STREAMING): a new stream does not walk there again until a DMA has
    // translated that page, so streams that keep ending at the same place
    // (a queue's last page) do not keep paying for it.
    // Twice as many as streams: each stream's frontier, and the places
    // streams that were replaced ended at.
    std::array<uint64_t, 2 * kStreamsPerRequester> dead_ends = no_dead_ends();
    size_t next_dead_end = 0;
    // The back-off of the stream that refilled last (Stream::empty_refills):
    // where a new stream starts.
    unsigned empty_refills = 0;

    static std::array<uint64_t, 2 * kStreamsPerRequester> no_dead_ends()
    {
        std::array<uint64_t, 2 * kStreamsPerRequester> none;
        none.fill(~uint64_t{0});
        return none;
    }

    bool is_dead_end(uint64_t iova) const
    {
        for (uint64_t d : dead_ends) {
            if ((d ^ iova) >> 12 == 0) {
                return true;
            }
        }
        return false;
    }
    void add_dead_end(uint64_t iova)
    {
        dead_ends[next_dead_end] = iova;
        next_dead_end = (next_dead_end + 1) % dead_ends.size();
    }
    // A page of [base, base + size) was translated: it is mapped now.
    void forget_dead_ends(uint64_t base, uint64_t size)
    {
        for (uint64_t &d : dead_ends) {
            if (d - base < size) {
                d = ~uint64_t{0};
            }
        }
    }
};

// What one DMA access costs in modelled time (latency model on): its walk
// reads one after the other, then the PCIe round trip of a read; pipelined
// reads (a STREAMING stream) overlap, depth at a time. Writes are posted.
struct LatencyModel {
    unsigned round_trip_ns;
    unsigned walk_read_ns;
    unsigned pipeline_depth;

    uint64_t read_ns(unsigned walk_entries, bool pipelined) const
    {
        const uint64_t trip = pipelined && pipeline_depth
                                  ? round_trip_ns / pipeline_depth
                                  : round_trip_ns;
        return uint64_t{walk_entries} * walk_read_ns + trip;
    }
    uint64_t write_ns(unsigned walk_entries) const
    {
        return uint64_t{walk_entries} * walk_read_ns;
    }
};

struct PrefetcherConfig {
    unsigned depth = 0;             // pages ahead; 0: no prefetching
    bool latency_model = false;
    unsigned round_trip_ns = 1000;
    unsigned walk_read_ns = 100;
};

class Prefetcher : public TranslationObserver {
public:
    Prefetcher(PrefetchTarget &core, Statistics &stats,
               const PrefetcherConfig &config)
        : core_(core), stats_(stats), config_(config)
    {
    }

    void translated(const Translation &t) override;
    void forget() override;

private:
    bool prefetch_ahead(uint16_t devid, const DeviceTableEntry &dte,
                        uint64_t iova, const IotlbEntry &entry, bool missed);

    PrefetchTarget &core_;
    Statistics &stats_;
    const PrefetcherConfig config_;
    std::mutex streams_lock_;
    std::unordered_map<uint16_t, RequesterStreams> streams_;
    uint64_t stream_clock_ = 0;
};

} // namespace ioguard
