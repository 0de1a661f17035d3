// The named hooks through which the parts beside the AMD-Vi core hear what
// it does: statistics and the fault records (with tracing) subscribe to the
// events it generates; the DMA verifier and the STREAMING prefetcher to the
// translations it gives (engine.cc subscribes them). The core tells a list
// only if it has listeners, so a part that is switched off costs the DMA
// path the test of an empty list, and removing a part touches its own
// files and the lines that subscribe it, not the core.
#pragma once

#include <cstdint>

#include "event_log.hh"

namespace ioguard {

struct DeviceTableEntry;
struct IotlbEntry;

class EventObserver {
public:
    virtual ~EventObserver() = default;
    // The core generated ev for reason, and delivery is what became of it
    // (the guest's event log took it, or why not). Called with the core's
    // control-plane lock held, in the order the events were generated.
    virtual void event(const Event &ev, FaultReason reason,
                       Delivery delivery) = 0;
};

// A translation the core gave from its page tables: what a request asked
// for and what it got.
struct Translation {
    uint16_t devid;
    const DeviceTableEntry &dte;
    uint64_t iova;
    unsigned perm;              // IOGUARD_PERM_*: NONE for QEMU's probes
    const IotlbEntry &entry;    // the page it was translated with
    bool from_caches;           // the IOTLB or the page directory cache
    unsigned walk_entries;      // table entries read for it (0: IOTLB hit)
    uint32_t pasid;             // kHostTables (v1), or the guest tables'
};

class TranslationObserver {
public:
    virtual ~TranslationObserver() = default;
    // Called on the DMA path, from any thread at once, with no lock held,
    // for every translation the core granted (passthrough and refused
    // requests are not translations).
    virtual void translated(const Translation &t) = 0;
    // The guest ran INVALIDATE_IOTLB_PAGES for devid (the host may not hear
    // of it: a fault rule can stop that). Called with the core's
    // control-plane lock held.
    virtual void device_iotlb_invalidated(uint16_t /*devid*/,
                                          uint64_t /*first*/,
                                          uint64_t /*last*/)
    {
    }
    // The IOMMU was reset or restored from a snapshot: forget what was
    // heard so far.
    virtual void forget() {}
};

// What the core does for the STREAMING prefetcher: say whether a
// translation is STREAMING, and fill the IOTLB ahead of DMA as
// PREFETCH_IOMMU_PAGES does.
class PrefetchTarget {
public:
    enum class Stop { None, NotStreaming, Failed, EndOfSpace };

    // The guest's PTE bit (with IOGUARD_CONTROL_STREAMING_EN) or a host
    // policy rule makes devid's DMA at iova STREAMING.
    virtual bool is_streaming(uint16_t devid, uint64_t iova,
                              bool pte_streaming) const = 0;
    // Read before the walks of a prefetch run (see ShardedCache).
    virtual uint64_t iotlb_epoch() const = 0;
    // Puts the translation of the page holding iova into the IOTLB, marked
    // as prefetched for devid, unless it is there already; page_size is its
    // size, walk_entries grows by the entries read, installed says whether
    // it was put there now. A page that does not translate (or is not
    // STREAMING, if require_streaming) stops the run: nothing is logged.
    virtual Stop prefetch_page(uint16_t devid, const DeviceTableEntry &dte,
                               uint64_t iova, bool require_streaming,
                               uint64_t filled_at, uint64_t &page_size,
                               unsigned &walk_entries, bool &installed) = 0;

protected:
    ~PrefetchTarget() = default;
};

} // namespace ioguard
