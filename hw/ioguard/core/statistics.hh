// What the IOMMU did, per requester ID and in total: the counters behind
// query-ioguard-stats.
//
// The DMA and interrupt paths bump the counters of one requester, with
// relaxed atomics and no lock; IOMMU-wide totals of those counters are sums
// taken when someone asks, so that the hot path pays for one set of
// counters, not two. Requesters are allocated a bus (256 functions) at a
// time on first use. Disabled, the DMA and interrupt paths count nothing
// per requester (the baseline of the engine benchmark); events and commands
// are always counted.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "hw/ioguard/iommu-engine.h"
#include "observers.hh"

namespace ioguard {

using Counter = std::atomic<uint64_t>;

inline void bump(Counter &c, uint64_t n = 1)
{
    c.fetch_add(n, std::memory_order_relaxed);
}

struct RequesterCounters;
using RequesterCounter = Counter RequesterCounters::*;

// A translation is counted once, by how it ended: passthrough, an IOTLB hit,
// an IOTLB miss (one page walk), or refused on the device-table entry alone.
// The total and the walks are derived from those, so that the IOTLB hit
// path, every DMA of the VM, pays one atomic add.
struct RequesterCounters {
    Counter passthrough{0}, iotlb_hits{0}, iotlb_misses{0}, refused_by_dte{0},
        page_walk_levels{0}, faults{0}, interrupts_remapped{0},
        interrupts_blocked{0};
    std::array<Counter, IOGUARD_EVENT_TYPES> events_by_type{};
    // The STREAMING prefetcher (IoguardPrefetchStats) and the latency
    // model (IoguardModelStats).
    Counter prefetch_issued{0}, prefetch_used{0}, prefetch_evicted_unused{0},
        prefetch_invalidated_unused{0}, prefetch_walks{0},
        prefetch_walk_levels{0};
    Counter model_reads{0}, model_pipelined_reads{0}, model_read_ns{0},
        model_writes{0}, model_write_ns{0};

    // False if every counter is zero: no activity since the last clear.
    bool read(IoguardRequesterStats &out) const;
    void clear();
};

// Counts into one of r's counters, if there is an r.
inline void bump(RequesterCounters *r, RequesterCounter c, uint64_t n = 1)
{
    if (r) {
        bump(r->*c, n);
    }
}

// One prefetch run (PREFETCH_IOMMU_PAGES or the STREAMING prefetcher): a
// walk reading `entries` entries (if it read any) that installed `issued`
// translations.
inline void count_prefetch(RequesterCounters *counters, unsigned entries,
                           unsigned issued)
{
    if (entries) {
        bump(counters, &RequesterCounters::prefetch_walks);
        bump(counters, &RequesterCounters::prefetch_walk_levels, entries);
    }
    bump(counters, &RequesterCounters::prefetch_issued, issued);
}

class Statistics : public EventObserver {
public:
    explicit Statistics(bool enabled) : enabled_(enabled) {}
    ~Statistics();
    Statistics(const Statistics &) = delete;
    Statistics &operator=(const Statistics &) = delete;

    // devid's counters, or nullptr when disabled.
    RequesterCounters *requester(uint16_t devid)
    {
        if (!enabled_) {
            return nullptr;
        }
        Bus *bus = buses_[devid >> 8].load(std::memory_order_acquire);
        if (__builtin_expect(bus == nullptr, 0)) {
            bus = allocate_bus(devid >> 8);
        }
        return &(*bus)[devid & 0xff];
    }

    // Every event the core generated, by type and requester, and whether
    // the guest's event log took it.
    void event(const Event &ev, FaultReason reason,
               Delivery delivery) override;
    void count_command(unsigned opcode);

    Counter events_logged{0}, events_dropped{0};

    // Sums over requesters plus the IOMMU-wide counters.
    IoguardStats totals() const;
    // False if devid had no activity since the last clear.
    bool read_requester(uint16_t devid, IoguardRequesterStats &out) const;
    // fn(const IoguardRequesterStats &) for each active requester, by devid.
    template <typename Fn> void for_each_requester(Fn fn) const
    {
        for (unsigned b = 0; b < buses_.size(); b++) {
            const Bus *bus = buses_[b].load(std::memory_order_acquire);
            for (unsigned f = 0; bus && f < 256; f++) {
                IoguardRequesterStats s;
                if ((*bus)[f].read(s)) {
                    s.devid = uint16_t(b << 8 | f);
                    fn(s);
                }
            }
        }
    }
    // Back to zero. Counts made while this runs may or may not survive.
    void clear();

private:
    using Bus = std::array<RequesterCounters, 256>;
    Bus *allocate_bus(unsigned bus);

    const bool enabled_;
    std::array<std::atomic<Bus *>, 256> buses_{};
    std::array<Counter, IOGUARD_EVENT_TYPES> events_by_type_{};
    std::array<Counter, IOGUARD_COMMAND_OPCODES> commands_by_opcode_{};
};

} // namespace ioguard
