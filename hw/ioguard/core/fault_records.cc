#include "fault_records.hh"

#include <algorithm>

#include "hw/ioguard/amd-vi-regs.h"

namespace ioguard {

// Numbers r, keeps it (if records are kept at all) and traces it.
void FaultRecords::add(IoguardFaultRecord r, uint64_t now_ns,
                       FaultReason reason)
{
    std::lock_guard<std::mutex> guard(lock_);
    r.seq = next_seq_++;
    r.time_ns = now_ns;
    r.reason = unsigned(reason);
    if (!ring_.empty()) {
        ring_[(r.seq - 1) % ring_.size()] = r;
    }
    host_.fault_recorded(r);    // in the order of the records' numbers
}

void FaultRecords::event(const Event &ev, FaultReason reason,
                         Delivery delivery)
{
    IoguardFaultRecord r{};
    const unsigned type = ev.type();
    r.delivery = unsigned(delivery);
    r.event_type = type;
    r.event_flags = ev.flags();
    r.devid = ev.has_requester() ? ev.devid() : -1;
    // IO_PAGE_FAULT and PAGE_TAB_HARDWARE_ERROR carry the domain, or with
    // GN the PASID in its place; the two INVALID_*_REQUEST events a PASID
    // (PPR's with its high bits in dw1 13:10, the device request's in dw0
    // 19:16).
    const bool names_domain =
        type == EVENT_TYPE_IO_FAULT || type == EVENT_TYPE_PAGE_TAB_ERR;
    const bool gn = names_domain && (r.event_flags & EVENT_FLAG_GN);
    r.domain = names_domain && !gn ? int32_t(ev.dw[1] & 0xffff) : -1;
    r.pasid = gn ? int32_t(ev.dw[1] & 0xffff)
              : type == EVENT_TYPE_INV_DEV_REQ
                  ? int32_t((ev.dw[1] & 0xffff) | ((ev.dw[0] >> 16) & 0xf) << 16)
              : type == EVENT_TYPE_INV_PPR_REQ
                  ? int32_t(ev.dw[0] >> 16 | ((ev.dw[1] >> 10) & 0xf) << 16)
                  : -1;
    r.address = ev.address();
    r.address_is_iova = type == EVENT_TYPE_IO_FAULT ||
                        type == EVENT_TYPE_ILL_DEV ||
                        type == EVENT_TYPE_INV_DEV_REQ ||
                        type == EVENT_TYPE_INV_PPR_REQ;
    r.interrupt = (r.event_flags & EVENT_FLAG_I) != 0;
    if (type == EVENT_TYPE_ILL_CMD) {
        r.access = IOGUARD_PERM_NONE;
    } else if (reason == FaultReason::CompletionStoreNotInRam) {
        r.access = IOGUARD_PERM_WRITE;
    } else if (reason == FaultReason::CommandNotInRam) {
        r.access = IOGUARD_PERM_READ;
    } else {
        r.access = (r.event_flags & EVENT_FLAG_RW) ? IOGUARD_PERM_WRITE
                                                   : IOGUARD_PERM_READ;
    }
    add(r, host_.now_ns(), reason);
}

namespace {

IoguardFaultRecord finding(const StaleUse &use)
{
    IoguardFaultRecord r{};
    r.delivery = unsigned(Delivery::NotReported);
    r.devid = use.devid;
    r.domain = use.domain;
    r.pasid = use.pasid;
    r.address = use.iova;
    r.address_is_iova = true;
    r.access = use.access;
    r.stale_target = use.stale_target;
    r.stale_perm = use.stale_perm;
    r.now_mapped = use.now_mapped;
    r.current_target = use.current_target;
    r.current_perm = use.current_perm;
    return r;
}

} // namespace

void FaultRecords::stale_use(const StaleUse &use, uint64_t now_ns)
{
    add(finding(use), now_ns,
        use.now_mapped ? FaultReason::StaleTranslation
                       : FaultReason::UseAfterUnmap);
}

void FaultRecords::ats_use_after_invalidation(const StaleUse &use,
                                              uint64_t now_ns)
{
    add(finding(use), now_ns, FaultReason::AtsUseAfterInvalidation);
}

std::vector<IoguardFaultRecord> FaultRecords::snapshot() const
{
    std::lock_guard<std::mutex> guard(lock_);
    std::vector<IoguardFaultRecord> out;
    const uint64_t held = std::min<uint64_t>(next_seq_ - cleared_at_,
                                             ring_.size());
    for (uint64_t seq = next_seq_ - held; seq < next_seq_; seq++) {
        out.push_back(ring_[(seq - 1) % ring_.size()]);
    }
    return out;
}

uint64_t FaultRecords::overwritten() const
{
    std::lock_guard<std::mutex> guard(lock_);
    const uint64_t made = next_seq_ - cleared_at_;
    return made > ring_.size() ? made - ring_.size() : 0;
}

void FaultRecords::clear()
{
    std::lock_guard<std::mutex> guard(lock_);
    cleared_at_ = next_seq_;
}

} // namespace ioguard
