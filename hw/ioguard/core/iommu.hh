// The AMD-Vi IOMMU engine: register file, device table, IOTLB, command
// processor, event log and interrupt remapping, tied together; the parts
// beside it hear it through observers.hh.
//
// Locking: lock_ serialises the control plane (MMIO, commands, the event
// log; the event observers are called under it). The translate and
// interrupt paths take no lock on a cache hit (the caches' lookups are
// seqlock reads; their writers lock one shard), and call the translation
// observers with no lock held.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>
#include <vector>

#include "device_table.hh"
#include "event_log.hh"
#include "fault_records.hh"
#include "fault_rules.hh"
#include "host.hh"
#include "hw/ioguard/iommu-engine.h"
#include "iotlb.hh"
#include "log_buffer.hh"
#include "mapping_walker.hh"
#include "page_directory_cache.hh"
#include "page_walker.hh"
#include "observers.hh"
#include "sharded_cache.hh"
#include "statistics.hh"
#include "streaming_policy.hh"

namespace ioguard {

// The core's own settings; the parts beside it (the DMA verifier, the
// STREAMING prefetcher) are set up by engine.cc.
struct Config {
    bool intremap = true;
    bool ga = true;
    bool xtsup = false;
    bool guest_translation = false;
    bool stats = true;
    unsigned fault_records = 256;
    FaultInjector *faults = nullptr;    // not owned; null: no fault rules
};

// With guest translation: 16-bit PASIDs (PASmax=15).
constexpr uint32_t kMaxPasid = 0xffff;

// The IOVA range a command's Address and S bit name (dw2, dw3).
struct IovaRange {
    uint64_t first;
    uint64_t last;
};
IovaRange command_range(uint32_t dw2, uint32_t dw3);

// What the IOTLB keeps of a successful walk under dte.
IotlbEntry make_iotlb_entry(const WalkResult &walk,
                            const DeviceTableEntry &dte);

class Iommu : public PrefetchTarget {
public:
    Iommu(Host &host, const Config &config);

    // Before the first DMA (observers.hh): the list is read without a lock.
    void subscribe(TranslationObserver &observer)
    {
        translation_observers_.push_back(&observer);
    }
    FaultRecords &fault_records() { return fault_records_; }

    void reset();
    uint64_t mmio_read(uint64_t offset, unsigned size);
    void mmio_write(uint64_t offset, uint64_t value, unsigned size);
    uint64_t extended_features() const { return efr_; }

    IoguardTranslation translate(uint16_t devid, uint64_t iova,
                                 unsigned perm);
    // A request with a PASID prefix (translate.cc).
    IoguardTranslation translate_pasid(uint16_t devid, uint32_t pasid,
                                       bool privileged, uint64_t iova,
                                       unsigned perm);
    bool remap_msi(uint16_t devid, const IoguardMsi &in, IoguardMsi &out);
    // IOGUARD_PAGE_REQUEST_* (page_requests.cc)
    unsigned page_request(const IoguardPageRequest &request);
    bool dma_is_identity(uint16_t devid);
    // The domain of devid's translated DMA, if its DMA is translated.
    std::optional<uint16_t> translating_domain(uint16_t devid);

    IoguardStats stats() const { return stats_.totals(); }
    Statistics &statistics() { return stats_; }

    // Fault injection (fault_injection.cc): see ioguard_iommu_faults_changed
    // and ioguard_iommu_run_timers.
    void faults_changed();
    void run_timers();

    // Snapshots and migration (snapshot.cc): load_state() is false, and
    // changes nothing, when the state is malformed.
    std::vector<uint8_t> save_state();
    bool load_state(const uint8_t *data, size_t size);

    StreamingPolicy &streaming_policy() { return policy_; }
    bool guest_streaming_enabled() const
    {
        return guest_streaming_.load(std::memory_order_relaxed);
    }

    // What the monitor asks (introspection.cc): nothing here changes what
    // the guest sees.
    std::vector<IoguardFaultRecord> fault_records(uint64_t &overwritten);
    void clear_fault_records();
    IoguardDeviceInfo read_device(uint16_t devid);
    struct MappingQuery {
        uint16_t devid;
        // kHostTables: requests without a PASID; else the PASID of requests
        // with one, privileged (supervisor) or not.
        uint32_t pasid;
        bool privileged;
        uint64_t start, end;
        uint64_t max_ranges, max_tables;
        bool coalesce;          // false: by page-table entry
    };
    IoguardMappingWalk walk_mappings(const MappingQuery &query,
                                     const MappingSink &sink);
    bool lookup_page(uint16_t devid, uint64_t iova, IoguardMapping &m);
    // IOGUARD_DMA_*: how dte's DMA goes, as the monitor says it.
    unsigned dma_kind(const std::optional<DeviceTableEntry> &dte) const;
    unsigned pasid_dma_kind(const std::optional<DeviceTableEntry> &dte,
                            uint32_t pasid) const;
    // How a request of devid with pasid goes now (IOGUARD_DMA_*).
    unsigned pasid_dma(uint16_t devid, uint32_t pasid);
    bool for_each_irte(uint16_t devid,
                       const std::function<void(const IoguardIrte &)> &fn);
    bool for_each_pasid(uint16_t devid, unsigned max,
                        const std::function<void(const IoguardPasidEntry &)> &fn);

private:
    // Register file (iommu.cc)
    uint64_t read_register(uint64_t offset);
    void write_register(uint64_t offset, uint64_t value, uint64_t written);
    void write_control(uint64_t value);
    uint64_t command_buffer_size() const;

    // Command processor (command_processor.cc)
    void process_commands();
    enum class CommandResult { Done, Stop };
    CommandResult execute_command(const uint32_t cmd[4], uint64_t addr);
    CommandResult completion_wait(const uint32_t cmd[4]);
    CommandResult complete_wait(const uint32_t cmd[4]);
    void invalidate_devtab_entry(uint16_t devid);
    void invalidate_iommu_pages(const uint32_t cmd[4]);
    void invalidate_iotlb_pages(const uint32_t cmd[4]);
    // Drops domain's translations of first..last from the IOTLB and tells
    // the host.
    void invalidate_domain_pages(uint16_t domain, uint64_t first,
                                 uint64_t last);
    void invalidate_interrupt_table(uint16_t devid);
    void invalidate_iommu_all();
    CommandResult prefetch_iommu_pages(const uint32_t cmd[4], uint64_t addr);
    // Page requests (page_requests.cc)
    CommandResult complete_ppr_request(const uint32_t cmd[4], uint64_t addr);
    // Whether a page request is one software can be asked about.
    bool page_request_valid(const IoguardPageRequest &request);

    // Events (iommu.cc)
    // DMA path: takes lock_, coalesces.
    void log_event(const Event &ev, FaultReason reason);
    // Command path.
    void log_event_locked(const Event &ev, FaultReason reason);
    void event_generated(const Event &ev, FaultReason reason,
                         Delivery delivery);
    // Sets status_bit and, if the control register's enable_bit allows,
    // interrupts: in x2APIC mode with the message of the log's INTCAPXT
    // register (0: event log, 1: PPR log).
    enum class XtInterrupt { EventLog = 0, PprLog = 1 };
    void signal_locked(uint32_t status_bit, unsigned enable_bit,
                       XtInterrupt xt = XtInterrupt::EventLog);
    void guest_error(const char *fmt, ...) __attribute__((format(printf, 2, 3)));

    // Translation (translate.cc)
    std::optional<DeviceTableEntry> fetch_dte(uint16_t devid, uint64_t addr,
                                              unsigned flags);
    void report_unreadable_dte(uint16_t devid, uint64_t addr, unsigned flags,
                               const DteLocation &where);
    // The guest's tables for iova, through the page directory cache.
    WalkResult walk_tables(const DeviceTableEntry &dte, uint64_t iova,
                           bool &from_directory);

    // What the STREAMING prefetcher asks of the core (observers.hh;
    // translate.cc)
    bool is_streaming(uint16_t devid, uint64_t iova,
                      bool pte_streaming) const override;
    uint64_t iotlb_epoch() const override { return iotlb_.epoch(); }
    Stop prefetch_page(uint16_t devid, const DeviceTableEntry &dte,
                       uint64_t iova, bool require_streaming,
                       uint64_t filled_at, uint64_t &page_size,
                       unsigned &walk_entries, bool &installed) override;

    IoguardTranslation fault(uint16_t devid, uint16_t domain, uint64_t iova,
                             unsigned flags, unsigned perm,
                             FaultReason reason);
    IoguardTranslation table_not_in_ram(uint16_t devid, uint16_t domain,
                                        uint64_t iova, uint64_t entry_address,
                                        unsigned flags, unsigned perm,
                                        const char *tables);
    IoguardTranslation translate_tables(uint16_t devid, uint64_t iova,
                                        unsigned perm);
    // A request a site=translate rule may change: tables is its
    // translation as the tables give it; pasid is kHostTables for a
    // request without a PASID.
    IoguardTranslation translate_with_faults(
        uint16_t devid, uint32_t pasid, bool privileged, uint64_t iova,
        unsigned perm, const std::function<IoguardTranslation()> &tables);
    IoguardTranslation translate_pasid_tables(uint16_t devid, uint32_t pasid,
                                              bool privileged, uint64_t iova,
                                              unsigned perm);
    // Guest translation (translate.cc): whether dte's guest fields count
    // (GV, and guest translation offered and enabled), whether its requests
    // without a PASID go through its guest tables, whether its guest fields
    // are ones this IOMMU cannot use, and such a request's translation.
    bool guest_fields_valid(const DeviceTableEntry &dte) const;
    bool uses_guest_tables(const DeviceTableEntry &dte) const;
    bool guest_fields_illegal(const DeviceTableEntry &dte) const;
    struct GuestRequest {
        uint32_t pasid;
        bool user;
        // An ATS translation request: a page the tables do not give is
        // answered "not present" (R=W=0; the device may ask for it with a
        // page request), without an event. Malformed tables still are.
        bool translation_request = false;
    };
    IoguardTranslation translate_guest(uint16_t devid,
                                       const DeviceTableEntry &dte,
                                       GuestRequest request, uint64_t iova,
                                       unsigned perm, uint64_t filled_at);

    // Fault injection (fault_injection.cc)
    // Whether a rule fires at this point of site (hit.now_ns is filled in).
    std::optional<FiredFault> inject(FaultSite site, FaultCheck hit)
    {
        if (!config_.faults || !config_.faults->armed(site)) {
            return std::nullopt;
        }
        hit.now_ns = host_.now_ns();
        return config_.faults->check(site, hit);
    }
    bool faults_armed(FaultSite site) const
    {
        return config_.faults && config_.faults->armed(site);
    }
    // The translations given while translate rules exist, for action=stale.
    // (pasid: kHostTables for requests without one)
    void remember_translation(uint16_t devid, uint32_t pasid, uint64_t iova,
                              const IoguardTranslation &t);
    std::optional<IoguardTranslation> remembered_translation(uint16_t devid,
                                                             uint32_t pasid,
                                                             uint64_t iova);
    void delay_completion_wait(const uint32_t cmd[4], uint64_t delay_ns);
    // What the host hears of invalidations, through the notifier and
    // device-iotlb fault sites (fault_injection.cc).
    void tell_host_pages_invalidated(int domain, uint64_t first,
                                     uint64_t last);
    void tell_host_device_iotlb(uint16_t devid, uint64_t first,
                                uint64_t last);
    // COMPLETE_PPR_REQUEST's answer, through the page-response site.
    void send_page_response(uint16_t devid, bool pasid_valid, uint32_t pasid,
                            uint16_t group, unsigned code);
    // The earliest of what rules delayed, as the host's one wake-up.
    void wake_for_delayed();

    Host &host_;
    const Config config_;
    const uint64_t efr_;

    std::mutex lock_;
    uint64_t dev_table_base_ = 0;
    uint64_t cmd_base_ = 0;
    uint64_t cmd_head_ = 0;
    uint64_t cmd_tail_ = 0;
    uint64_t control_ = 0;
    uint64_t status_ = 0;
    uint64_t excl_base_ = 0, excl_limit_ = 0;
    uint64_t ga_log_base_ = 0, ga_log_tail_addr_ = 0, ga_head_ = 0, ga_tail_ = 0;
    std::array<uint64_t, 3> intcapxt_{};
    LogBuffer event_log_;
    LogBuffer ppr_log_;
    FaultRecords fault_records_;
    Event last_dma_event_;
    uint64_t last_dma_event_ns_ = 0;

    // Read on the DMA path without lock_.
    std::atomic<bool> enabled_{false};
    std::atomic<bool> ga_enabled_{false};
    // GTSup offered and GTEn set: DTE.GV counts.
    std::atomic<bool> guest_translation_enabled_{false};
    // IOGUARD_MMIO_CONTROL's STREAMING_EN: the guest's PTE bit counts.
    std::atomic<bool> guest_streaming_{false};

    Statistics stats_;
    // Hear every event generated (observers.hh); under lock_.
    std::vector<EventObserver *> event_observers_;
    // Hear every translation granted (observers.hh); fixed before DMA.
    std::vector<TranslationObserver *> translation_observers_;
    DeviceTable device_table_{host_};
    Iotlb iotlb_{stats_};
    PageDirectoryCache directory_cache_;

    // Fault injection: completions a rule delayed (under lock_), and the
    // translations action=stale can serve.
    struct DelayedWait {
        uint64_t due_ns;
        std::array<uint32_t, 4> cmd;
    };
    std::deque<DelayedWait> delayed_waits_;
    // Invalidations the host hears late (action=delay at the notifier and
    // device-iotlb sites), in the order they were made. Not saved in
    // snapshots: a loaded state has the host check everything it holds.
    struct DelayedHostInvalidation {
        uint64_t due_ns;
        bool device_iotlb;      // else the IOMMU's pages of domain
        int id;                 // domain (-1: all) or devid
        uint64_t first, last;
    };
    std::deque<DelayedHostInvalidation> delayed_host_;
    // Page responses the device hears late (action=delay at the
    // page-response site); not saved in snapshots either.
    struct DelayedPageResponse {
        uint64_t due_ns;
        uint16_t devid;
        bool pasid_valid;
        uint32_t pasid;
        uint16_t group;
        unsigned code;
    };
    std::deque<DelayedPageResponse> delayed_responses_;
    std::mutex remembered_lock_;
    // (devid, PASID or kHostTables, 4 KiB page)
    std::map<std::tuple<uint16_t, uint32_t, uint64_t>, IoguardTranslation>
        remembered_;

    StreamingPolicy policy_;
};

} // namespace ioguard
