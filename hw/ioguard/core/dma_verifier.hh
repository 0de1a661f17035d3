// The DMA verifier (property verifier=on): DMA that a cached translation
// lets through is checked against a fresh walk of the guest's page tables.
// When the tables no longer grant it (the driver unmapped or remapped the
// IOVA and has not invalidated yet: the window lazy invalidation opens, or
// a device using a buffer after its unmap), the DMA still goes where the
// stale entry says, as on real hardware, and the finding becomes a fault
// record and a LOG_GUEST_ERROR line. The guest sees nothing of it.
//
// With ATS a device keeps translations of its own, and the IOMMU sees
// only the device's word that it used one (ats_used). It hears every
// INVALIDATE_IOTLB_PAGES the guest runs, numbered: a device that used a
// translation it had before an invalidation that covered it (the device
// missed it: a fault rule dropped it, or the device is broken), while the
// tables no longer map it so, is a finding of its own.
#pragma once

#include <array>
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
    void device_iotlb_invalidated(uint16_t devid, uint64_t first,
                                  uint64_t last) override;

    // How many INVALIDATE_IOTLB_PAGES ran: a device notes it with each
    // translation it keeps.
    uint64_t device_iotlb_generation();
    // A device's use of a translation it kept: of iova, to target, for
    // access, kept since generation, for a request with pasid (or
    // kHostTables: without one).
    struct AtsUse {
        uint32_t pasid;
        bool privileged;
        uint64_t iova, target;
        unsigned access;
        uint64_t generation;
    };
    // dev is devid's DTE as in memory now, its dma how a request like the
    // one used goes now.
    void ats_used(uint16_t devid, const IoguardDeviceInfo &dev,
                  const AtsUse &used);

private:
    // A finding (ats: through a device's own translation cache), unless it
    // repeats the last one within a DMA burst.
    void report(const StaleUse &use, bool ats);
    bool invalidated_since(uint16_t devid, uint64_t generation,
                           uint64_t iova);

    // The last device-IOTLB invalidations; a use older than the oldest
    // kept is not judged (no finding rather than a wrong one).
    struct DeviceIotlbInvalidation {
        uint64_t generation;
        uint16_t devid;
        uint64_t first, last;
    };
    static constexpr size_t kInvalidationsKept = 4096;
    std::mutex invalidations_lock_;
    std::array<DeviceIotlbInvalidation, kInvalidationsKept> invalidations_{};
    uint64_t generation_ = 0;

    Host &host_;
    FaultRecords &records_;
    std::mutex lock_;           // the last finding, for coalescing
    StaleUse last_{};
    uint64_t last_ns_ = 0;
};

} // namespace ioguard
