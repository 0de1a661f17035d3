// The DMA verifier (property verifier=on): DMA that a cached translation
// lets through is checked against a fresh walk of the guest's page tables.
// When the tables no longer grant it (the driver unmapped or remapped the
// IOVA and has not invalidated yet: the window lazy invalidation opens, or
// a device using a buffer after its unmap), the DMA still goes where the
// stale entry says, as on real hardware, and the finding becomes a fault
// record and a LOG_GUEST_ERROR line. The guest sees nothing of it.
#pragma once

#include <cstdint>
#include <mutex>

#include "fault_records.hh"
#include "host.hh"
#include "observers.hh"

namespace ioguard {

class DmaVerifier : public TranslationObserver {
public:
    DmaVerifier(Host &host, FaultRecords &records)
        : host_(host), records_(records)
    {
    }

    void translated(const Translation &t) override;

private:
    void report(const StaleUse &use);

    Host &host_;
    FaultRecords &records_;
    std::mutex lock_;           // the last finding, for coalescing
    StaleUse last_{};
    uint64_t last_ns_ = 0;
};

} // namespace ioguard
