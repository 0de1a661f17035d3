// The fault records behind query-ioguard-faults: a bounded ring, kept on
// the host side, of every event the IOMMU generated (whether the guest's
// event log received it or not) and of the DMA verifier's findings.
//
// Each record says why, in more detail than the architected event: the
// event of a fault on a not-present PTE and of one on a DTE the guest never
// validated can look alike, their reasons do not. The ring has its own
// lock: events arrive under the core's lock, verifier findings from the
// DMA path.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "event_log.hh"
#include "host.hh"
#include "observers.hh"
#include "hw/ioguard/iommu-engine.h"

namespace ioguard {

// A verifier finding: DMA that an IOTLB entry let through although the
// guest's tables no longer say so.
struct StaleUse {
    uint16_t devid;
    uint16_t domain;
    int32_t pasid = -1;         // a request through a PASID's guest tables
    uint64_t iova;
    unsigned access;            // IOGUARD_PERM_READ or _WRITE
    uint64_t stale_target;      // where the IOTLB sent it
    unsigned stale_perm;
    bool now_mapped;            // what a fresh walk says
    uint64_t current_target;
    unsigned current_perm;
};

// Records every event the core generates (it subscribes to them) and the
// verifier's findings, and hands each record to the host's tracing.
class FaultRecords : public EventObserver {
public:
    FaultRecords(Host &host, unsigned capacity)
        : host_(host), ring_(capacity)
    {
    }

    void event(const Event &ev, FaultReason reason,
               Delivery delivery) override;
    void stale_use(const StaleUse &use, uint64_t now_ns);
    // A device used an ATS translation after its invalidation.
    void ats_use_after_invalidation(const StaleUse &use, uint64_t now_ns);

    // The records still held, oldest first.
    std::vector<IoguardFaultRecord> snapshot() const;
    // Records pushed out of the ring by newer ones.
    uint64_t overwritten() const;
    void clear();

private:
    void add(IoguardFaultRecord r, uint64_t now_ns, FaultReason reason);

    Host &host_;
    mutable std::mutex lock_;
    std::vector<IoguardFaultRecord> ring_;
    uint64_t next_seq_ = 1;     // records made so far + 1
    uint64_t cleared_at_ = 1;   // next_seq_ at the last clear()
};

} // namespace ioguard
