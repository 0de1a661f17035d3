// The named hooks through which the parts beside the AMD-Vi core hear what
// it does: statistics and the fault records (with tracing) subscribe to the
// events it generates; the DMA verifier and the STREAMING prefetcher to the
// translations it gives. The core tells a list only if it has listeners,
// so a part that is switched off costs the DMA path the test of an empty
// list, and removing a part touches its own files and the line that
// subscribes it, not the core.
#pragma once

#include <cstdint>

#include "event_log.hh"

namespace ioguard {

class EventObserver {
public:
    virtual ~EventObserver() = default;
    // The core generated ev for reason, and delivery is what became of it
    // (the guest's event log took it, or why not). Called with the core's
    // control-plane lock held, in the order the events were generated.
    virtual void event(const Event &ev, FaultReason reason,
                       Delivery delivery) = 0;
};

} // namespace ioguard
