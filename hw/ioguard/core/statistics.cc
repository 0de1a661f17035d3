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
#define IOGUARD_READ(name) out.name = get(name);
#define IOGUARD_READ_PREFETCH(name) out.prefetch.name = get(prefetch_##name);
#define IOGUARD_READ_MODEL(name) out.model.name = get(model_##name);
    IOGUARD_REQUESTER_COUNTERS(IOGUARD_READ)
    IOGUARD_PREFETCH_COUNTERS(IOGUARD_READ_PREFETCH)
    IOGUARD_MODEL_COUNTERS(IOGUARD_READ_MODEL)
#undef IOGUARD_READ
#undef IOGUARD_READ_PREFETCH
#undef IOGUARD_READ_MODEL
    out.translations = out.passthrough + out.iotlb_hits + out.iotlb_misses +
                       get(refused_by_dte);
    out.page_walks = out.iotlb_misses;
    for (unsigned t = 0; t < IOGUARD_EVENT_TYPES; t++) {
        out.events_by_type[t] = get(events_by_type[t]);
    }
    bool active = false;
    for_each_counter(*this, [&active](const Counter &c) {
        active |= get(c) != 0;
    });
    return active;
}

void RequesterCounters::clear()
{
    for_each_counter(*this, [](Counter &c) { zero(c); });
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
#define IOGUARD_SUM(name) s.name += r.name;
#define IOGUARD_SUM_PREFETCH(name) s.prefetch.name += r.prefetch.name;
        IOGUARD_REQUESTER_COUNTERS(IOGUARD_SUM)
        IOGUARD_PREFETCH_COUNTERS(IOGUARD_SUM_PREFETCH)
#undef IOGUARD_SUM
#undef IOGUARD_SUM_PREFETCH
        s.translations += r.translations;
        s.page_walks += r.page_walks;
        s.requesters += r.translations != 0;
    });
#define IOGUARD_READ(name) s.name = get(name);
    IOGUARD_IOMMU_COUNTERS(IOGUARD_READ)
#undef IOGUARD_READ
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
#define IOGUARD_ZERO(name) zero(name);
    IOGUARD_IOMMU_COUNTERS(IOGUARD_ZERO)
#undef IOGUARD_ZERO
    for (Counter &c : events_by_type_) {
        zero(c);
    }
    for (Counter &c : commands_by_opcode_) {
        zero(c);
    }
}

} // namespace ioguard
