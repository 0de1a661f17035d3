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
//
// The counters are the lists of include/hw/ioguard/iommu-engine.h; the
// prefetcher's are prefetch_*, the latency model's model_*.
struct RequesterCounters {
#define IOGUARD_COUNTER(name) Counter name{0};
#define IOGUARD_PREFETCH_COUNTER(name) Counter prefetch_##name{0};
#define IOGUARD_MODEL_COUNTER(name) Counter model_##name{0};
    IOGUARD_REQUESTER_COUNTERS(IOGUARD_COUNTER)
    IOGUARD_PREFETCH_COUNTERS(IOGUARD_PREFETCH_COUNTER)
    IOGUARD_MODEL_COUNTERS(IOGUARD_MODEL_COUNTER)
    Counter refused_by_dte{0};
#undef IOGUARD_COUNTER
#undef IOGUARD_PREFETCH_COUNTER
#undef IOGUARD_MODEL_COUNTER
    std::array<Counter, IOGUARD_EVENT_TYPES> events_by_type{};

    // False if every counter is zero: no activity since the last clear.
    bool read(IoguardRequesterStats &out) const;
    void clear();

private:
    // fn(counter) for every counter of self (a RequesterCounters, const
    // or not).
    template <typename Self, typename Fn>
    static void for_each_counter(Self &self, Fn fn)
    {
#define IOGUARD_VISIT(name) fn(self.name);
#define IOGUARD_VISIT_PREFETCH(name) fn(self.prefetch_##name);
#define IOGUARD_VISIT_MODEL(name) fn(self.model_##name);
        IOGUARD_REQUESTER_COUNTERS(IOGUARD_VISIT)
        IOGUARD_PREFETCH_COUNTERS(IOGUARD_VISIT_PREFETCH)
        IOGUARD_MODEL_COUNTERS(IOGUARD_VISIT_MODEL)
#undef IOGUARD_VISIT
#undef IOGUARD_VISIT_PREFETCH
#undef IOGUARD_VISIT_MODEL
        fn(self.refused_by_dte);
        for (auto &c : self.events_by_type) {
            fn(c);
        }
    }
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

#define IOGUARD_COUNTER(name) Counter name{0};
    IOGUARD_IOMMU_COUNTERS(IOGUARD_COUNTER)
#undef IOGUARD_COUNTER

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
