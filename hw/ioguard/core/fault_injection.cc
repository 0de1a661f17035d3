// What the engine keeps for fault rules beyond the check at each site: the
// completions and host invalidations a rule delayed, and the translations
// a rule may serve stale.
// (The sites themselves are in translate.cc, command_processor.cc,
// iommu.cc and interrupt_remap.cc, next to what they break.)
#include "iommu.hh"

namespace ioguard
{

namespace
{

// Bounds on what a guest can make the host keep: COMPLETION_WAITs waiting
// on a delay (beyond it the oldest completes early), and translations for
// action=stale (beyond it they are forgotten and remembered afresh).
constexpr size_t kMaxDelayedWaits = 4096;
constexpr size_t kMaxDelayedHost = 4096;
constexpr size_t kMaxRemembered = 4096;

} // namespace

void Iommu::faults_changed()
{
    std::lock_guard<std::mutex> guard(lock_);
    process_commands(); // a rule that held the buffer stuck may be gone
    host_.device_table_changed(-1);
}

void Iommu::delay_completion_wait(const uint32_t cmd[4], uint64_t delay_ns)
{
    if (delayed_waits_.size() == kMaxDelayedWaits) {
        complete_wait(delayed_waits_.front().cmd.data());
        delayed_waits_.pop_front();
    }
    const uint64_t due = host_.now_ns() + delay_ns;
    // Completions happen in command order: one delayed later than the one
    // before it in the queue waits for it.
    const uint64_t after =
        delayed_waits_.empty() ? 0 : delayed_waits_.back().due_ns;
    delayed_waits_.push_back(
        {std::max(due, after), {cmd[0], cmd[1], cmd[2], cmd[3]}});
    wake_for_delayed();
}

void Iommu::wake_for_delayed()
{
    uint64_t due = ~uint64_t{0};
    if (!delayed_waits_.empty()) {
        due = delayed_waits_.front().due_ns;
    }
    for (const DelayedHostInvalidation &d : delayed_host_) {
        due = std::min(due, d.due_ns);
    }
    for (const DelayedPageResponse &d : delayed_responses_) {
        due = std::min(due, d.due_ns);
    }
    if (due != ~uint64_t{0}) {
        host_.wake_at(due);
    }
}

// The notifier site: a host that keeps translations of its own (QEMU's
// notifier users: vhost, vhost-user) hears of the IOMMU's invalidation
// not at all (drop) or late (delay), while the IOMMU's own IOTLB has
// dropped the range and the guest's COMPLETION_WAIT completes.
void Iommu::tell_host_pages_invalidated(int domain, uint64_t first,
                                        uint64_t last)
{
    if (const auto fired = inject(FaultSite::Notifier, {0, first})) {
        if (fired->action == FaultAction::Delay) {
            if (delayed_host_.size() == kMaxDelayedHost) {
                delayed_host_.front().due_ns = 0;   // told at the next timer
            }
            delayed_host_.push_back({host_.now_ns() + fired->delay_ns, false,
                                     domain, first, last});
            wake_for_delayed();
        }
        return;
    }
    host_.iommu_pages_invalidated(domain, first, last);
}

// The device-iotlb site: INVALIDATE_IOTLB_PAGES does not reach the
// device's translation cache (drop), or reaches it late (delay).
void Iommu::tell_host_device_iotlb(uint16_t devid, uint64_t first,
                                   uint64_t last)
{
    if (const auto fired = inject(FaultSite::DeviceIotlb, {devid, first})) {
        if (fired->action == FaultAction::Delay) {
            if (delayed_host_.size() == kMaxDelayedHost) {
                delayed_host_.front().due_ns = 0;
            }
            delayed_host_.push_back({host_.now_ns() + fired->delay_ns, true,
                                     devid, first, last});
            wake_for_delayed();
        }
        return;
    }
    host_.device_iotlb_invalidated(devid, first, last);
}

// The page-response site: COMPLETE_PPR_REQUEST's answer never reaches
// the device (drop), reaches it late (delay), or as a Response Failure
// (fault).
void Iommu::send_page_response(uint16_t devid, bool pasid_valid,
                               uint32_t pasid, uint16_t group, unsigned code)
{
    if (const auto fired = inject(FaultSite::PageResponse, {devid})) {
        switch (fired->action) {
        case FaultAction::Delay:
            if (delayed_responses_.size() == kMaxDelayedHost) {
                delayed_responses_.front().due_ns = 0;
            }
            delayed_responses_.push_back({host_.now_ns() + fired->delay_ns,
                                          devid, pasid_valid, pasid, group,
                                          code});
            wake_for_delayed();
            return;
        case FaultAction::Fault:
            code = IOGUARD_PRG_FAILURE;
            break;
        default:
            return;     // dropped
        }
    }
    host_.page_response(devid, pasid_valid, pasid, group, code);
}

void Iommu::run_timers()
{
    std::lock_guard<std::mutex> guard(lock_);
    const uint64_t now = host_.now_ns();
    while (!delayed_waits_.empty() && delayed_waits_.front().due_ns <= now) {
        const DelayedWait wait = delayed_waits_.front();
        delayed_waits_.pop_front();
        complete_wait(wait.cmd.data());
    }
    // Delays differ from rule to rule: each due one is told, in order.
    for (auto it = delayed_host_.begin(); it != delayed_host_.end();) {
        if (it->due_ns > now) {
            ++it;
            continue;
        }
        if (it->device_iotlb) {
            host_.device_iotlb_invalidated(uint16_t(it->id), it->first,
                                           it->last);
        } else {
            host_.iommu_pages_invalidated(it->id, it->first, it->last);
        }
        it = delayed_host_.erase(it);
    }
    for (auto it = delayed_responses_.begin();
         it != delayed_responses_.end();) {
        if (it->due_ns > now) {
            ++it;
            continue;
        }
        host_.page_response(it->devid, it->pasid_valid, it->pasid, it->group,
                            it->code);
        it = delayed_responses_.erase(it);
    }
    wake_for_delayed();
}

void Iommu::remember_translation(uint16_t devid, uint32_t pasid,
                                 uint64_t iova, const IoguardTranslation &t)
{
    if (t.perm == IOGUARD_PERM_NONE) {
        return;
    }
    const uint64_t page = iova & ~uint64_t{0xfff};
    const IoguardTranslation small{t.translated_addr + (page & t.addr_mask),
                                   0xfff, t.perm};
    std::lock_guard<std::mutex> guard(remembered_lock_);
    if (remembered_.size() == kMaxRemembered) {
        remembered_.clear();
    }
    remembered_[{devid, pasid, page}] = small;
}

std::optional<IoguardTranslation>
Iommu::remembered_translation(uint16_t devid, uint32_t pasid, uint64_t iova)
{
    std::lock_guard<std::mutex> guard(remembered_lock_);
    const auto it = remembered_.find({devid, pasid, iova & ~uint64_t{0xfff}});
    if (it == remembered_.end()) {
        return std::nullopt;
    }
    return it->second;
}

} // namespace ioguard
