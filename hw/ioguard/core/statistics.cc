#include "statistics.hh"

#include "hw/ioguard/amd-vi-regs.h"

namespace ioguard {

namespace {

uint64_t get(const Counter &c) { return c.load(std::memory_order_relaxed); }
void zero(Counter &c) { c.store(0, std::memory_order_relaxed); }

} // namespace

bool RequesterCounters::read(IoguardRequesterStats &out) const
{
    out = IoguardRequesterStats{};
    out.iotlb_hits = get(iotlb_hits);
    out.iotlb_misses = get(iotlb_misses);
    out.page_walks = out.iotlb_misses;
    out.page_walk_levels = get(page_walk_levels);
    out.passthrough = get(passthrough);
    out.translations = out.passthrough + out.iotlb_hits + out.iotlb_misses +
                       get(refused_by_dte);
    out.faults = get(faults);
    out.interrupts_remapped = get(interrupts_remapped);
    out.interrupts_blocked = get(interrupts_blocked);
    uint64_t events = 0;
    for (unsigned t = 0; t < IOGUARD_EVENT_TYPES; t++) {
        out.events_by_type[t] = get(events_by_type[t]);
        events += out.events_by_type[t];
    }
    out.prefetch = IoguardPrefetchStats{
        get(prefetch_issued), get(prefetch_used),
        get(prefetch_evicted_unused), get(prefetch_invalidated_unused),
        get(prefetch_walks), get(prefetch_walk_levels)};
    out.model = IoguardModelStats{get(model_reads), get(model_pipelined_reads),
                                  get(model_read_ns), get(model_writes),
                                  get(model_write_ns)};
    return out.translations || out.faults || out.interrupts_remapped ||
           out.interrupts_blocked || events || out.prefetch.issued;
}

void RequesterCounters::clear()
{
    for (Counter *c : {&passthrough, &iotlb_hits, &iotlb_misses,
                       &refused_by_dte, &page_walk_levels, &faults,
                       &interrupts_remapped, &interrupts_blocked,
                       &prefetch_issued, &prefetch_used,
                       &prefetch_evicted_unused, &prefetch_invalidated_unused,
                       &prefetch_walks, &prefetch_walk_levels, &model_reads,
                       &model_pipelined_reads, &model_read_ns, &model_writes,
                       &model_write_ns}) {
        zero(*c);
    }
    for (Counter &c : events_by_type) {
        zero(c);
    }
}

Statistics::~Statistics()
{
    for (auto &bus : buses_) {
        delete bus.load();
    }
}

Statistics::Bus *Statistics::allocate_bus(unsigned b)
{
    Bus *fresh = new Bus();
    Bus *expected = nullptr;
    if (buses_[b].compare_exchange_strong(expected, fresh,
                                          std::memory_order_acq_rel)) {
        return fresh;
    }
    delete fresh;           // another thread was first
    return expected;
}

void Statistics::event(const Event &ev, FaultReason, Delivery delivery)
{
    const unsigned type = ev.type() % IOGUARD_EVENT_TYPES;
    bump(events_by_type_[type]);
    if (ev.has_requester()) {
        if (RequesterCounters *r = requester(ev.devid())) {
            bump(r->events_by_type[type]);
        }
    }
    bump(delivery == Delivery::Logged ? events_logged : events_dropped);
}

void Statistics::count_command(unsigned opcode)
{
    bump(commands_by_opcode_[opcode % IOGUARD_COMMAND_OPCODES]);
}

IoguardStats Statistics::totals() const
{
    IoguardStats s{};
    for_each_requester([&s](const IoguardRequesterStats &r) {
        s.translations += r.translations;
        s.iotlb_hits += r.iotlb_hits;
        s.iotlb_misses += r.iotlb_misses;
        s.page_walks += r.page_walks;
        s.page_walk_levels += r.page_walk_levels;
        s.passthrough += r.passthrough;
        s.faults += r.faults;
        s.interrupts_remapped += r.interrupts_remapped;
        s.interrupts_blocked += r.interrupts_blocked;
        s.requesters += r.translations != 0;
        s.prefetch.issued += r.prefetch.issued;
        s.prefetch.used += r.prefetch.used;
        s.prefetch.evicted_unused += r.prefetch.evicted_unused;
        s.prefetch.invalidated_unused += r.prefetch.invalidated_unused;
        s.prefetch.walks += r.prefetch.walks;
        s.prefetch.walk_levels += r.prefetch.walk_levels;
    });
    s.events_logged = get(events_logged);
    s.events_dropped = get(events_dropped);
    for (unsigned t = 0; t < IOGUARD_EVENT_TYPES; t++) {
        s.events_by_type[t] = get(events_by_type_[t]);
    }
    for (unsigned op = 0; op < IOGUARD_COMMAND_OPCODES; op++) {
        s.commands_by_opcode[op] = get(commands_by_opcode_[op]);
        s.commands += s.commands_by_opcode[op];
    }
    for (unsigned op : {CMD_INV_DEV_ENTRY, CMD_INV_IOMMU_PAGES,
                        CMD_INV_IOTLB_PAGES, CMD_INV_IRT, CMD_INV_ALL}) {
        s.invalidations += s.commands_by_opcode[op];
    }
    return s;
}

bool Statistics::read_requester(uint16_t devid,
                                IoguardRequesterStats &out) const
{
    const Bus *bus = buses_[devid >> 8].load(std::memory_order_acquire);
    if (!bus) {
        out = IoguardRequesterStats{};
        out.devid = devid;
        return false;
    }
    const bool active = (*bus)[devid & 0xff].read(out);
    out.devid = devid;
    return active;
}

void Statistics::clear()
{
    for (auto &b : buses_) {
        if (Bus *bus = b.load(std::memory_order_acquire)) {
            for (RequesterCounters &r : *bus) {
                r.clear();
            }
        }
    }
    zero(events_logged);
    zero(events_dropped);
    for (Counter &c : events_by_type_) {
        zero(c);
    }
    for (Counter &c : commands_by_opcode_) {
        zero(c);
    }
}

} // namespace ioguard
