// Snapshots and migration of the engine: what the guest programmed (the
// registers), what is still to happen (completions a fault rule delayed)
// and what the host set at run time (STREAMING rules). The caches are not
// saved: a restored IOMMU starts them empty, as it may after any
// invalidation, and refills them from the tables in guest memory.
#include "bits.hh"
#include "hw/ioguard/amd-vi-regs.h"
#include "iommu.hh"
#include "snapshot.hh"

namespace ioguard {

namespace {

constexpr uint64_t kIommuStateVersion = 1;
constexpr uint64_t kMaxSavedWaits = 4096;

} // namespace

std::vector<uint8_t> Iommu::save_state()
{
    std::lock_guard<std::mutex> guard(lock_);
    StateWriter out;
    out.put(kIommuStateVersion);
    for (uint64_t v :
         {dev_table_base_, cmd_base_, cmd_head_, cmd_tail_, control_, status_,
          excl_base_, excl_limit_, ppr_log_.base_register, ppr_log_.head,
          ppr_log_.tail,
          ga_log_base_, ga_log_tail_addr_, ga_head_, ga_tail_, intcapxt_[0],
          intcapxt_[1], intcapxt_[2], event_log_.base_register,
          event_log_.head, event_log_.tail, uint64_t(guest_streaming_.load())}) {
        out.put(v);
    }
    const auto rules = policy_.rules();
    out.put(rules.size());
    for (const IoguardStreamingRule &r : rules) {
        out.put(r.devid);
        out.put(r.first);
        out.put(r.last);
    }
    out.put(delayed_waits_.size());
    for (const DelayedWait &w : delayed_waits_) {
        out.put(w.due_ns);
        out.put(uint64_t(w.cmd[1]) << 32 | w.cmd[0]);
        out.put(uint64_t(w.cmd[3]) << 32 | w.cmd[2]);
    }
    return out.bytes;
}

bool Iommu::load_state(const uint8_t *data, size_t size)
{
    StateReader in(data, size);
    uint64_t version, r[22], n;
    if (!in.get(version) || version != kIommuStateVersion) {
        return false;
    }
    for (uint64_t &v : r) {
        if (!in.get(v)) {
            return false;
        }
    }
    std::vector<IoguardStreamingRule> rules;
    if (!in.get_count(n, 3, IOGUARD_STREAMING_RULES_MAX)) {
        return false;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t devid, first, last;
        if (!in.get(devid) || devid > 0xffff || !in.get(first) ||
            !in.get(last) || first > last) {
            return false;
        }
        rules.push_back({uint16_t(devid), first, last});
    }
    std::deque<DelayedWait> waits;
    if (!in.get_count(n, 3, kMaxSavedWaits)) {
        return false;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t due, lo, hi;
        if (!in.get(due) || !in.get(lo) || !in.get(hi)) {
            return false;
        }
        waits.push_back({due,
                         {uint32_t(lo), uint32_t(lo >> 32), uint32_t(hi),
                          uint32_t(hi >> 32)}});
    }
    if (!in.done()) {
        return false;
    }

    std::lock_guard<std::mutex> guard(lock_);
    dev_table_base_ = r[0];
    cmd_base_ = r[1];
    control_ = r[4];
    status_ = r[5];
    excl_base_ = r[6];
    excl_limit_ = r[7];
    ga_log_base_ = r[11];
    ga_log_tail_addr_ = r[12];
    ga_head_ = r[13];
    ga_tail_ = r[14];
    intcapxt_ = {r[15], r[16], r[17]};
    // Pointers inside the rings they belong to, as register writes would
    // leave them: a hostile stream cannot point them elsewhere.
    event_log_.set_base(r[18]);
    event_log_.set_head(r[19]);
    event_log_.set_tail(r[20]);
    ppr_log_.set_base(r[8]);
    ppr_log_.set_head(r[9]);
    ppr_log_.set_tail(r[10]);
    cmd_head_ = r[2] & IOGUARD_RING_PTR_MASK & (command_buffer_size() - 1);
    cmd_tail_ = r[3] & IOGUARD_RING_PTR_MASK & (command_buffer_size() - 1);
    guest_streaming_ = r[21] != 0;
    enabled_ = test(control_, CONTROL_IOMMU_EN);
    ga_enabled_ = test(control_, CONTROL_GA_EN);
    guest_translation_enabled_ =
        config_.guest_translation && test(control_, CONTROL_GT_EN);
    device_table_.set_base(dev_table_base_);
    last_dma_event_ = Event{};

    for (const IoguardStreamingRule &old : policy_.rules()) {
        policy_.remove(old);
    }
    for (const IoguardStreamingRule &rule : rules) {
        policy_.add(rule);
    }
    delayed_waits_ = std::move(waits);
    delayed_host_.clear();      // device_table_changed(-1) below: all checked
    for (TranslationObserver *observer : translation_observers_) {
        observer->forget();
    }
    {
        std::lock_guard<std::mutex> remembered_guard(remembered_lock_);
        remembered_.clear();
    }
    iotlb_.invalidate_iommu_all();
    directory_cache_.invalidate_iommu_all();
    wake_for_delayed();
    host_.device_table_changed(-1);
    return true;
}

} // namespace ioguard
