// The extern "C" face of the engine (include/hw/ioguard/iommu-engine.h).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "fault_inject_api.hh"
#include "hw/ioguard/iommu-engine.h"
#include "dma_verifier.hh"
#include "iommu.hh"
#include "prefetcher.hh"

namespace {

// Adapts the C function table to the engine's Host interface.
class CHost final : public ioguard::Host {
public:
    CHost(const IoguardHostOps &ops, void *opaque) : ops_(ops), opaque_(opaque)
    {
    }
    bool read_ram(uint64_t addr, void *buf, uint64_t len) override
    {
        return ops_.read_ram(opaque_, addr, buf, len);
    }
    bool write_ram(uint64_t addr, const void *buf, uint64_t len) override
    {
        return ops_.write_ram(opaque_, addr, buf, len);
    }
    void raise_interrupt() override { ops_.raise_interrupt(opaque_); }
    void deliver_msi(uint64_t address, uint32_t data) override
    {
        ops_.deliver_msi(opaque_, address, data);
    }
    void guest_error(const std::string &message) override
    {
        if (ops_.guest_error) {
            ops_.guest_error(opaque_, message.c_str());
        }
    }
    void interrupt_table_invalidated(int devid) override
    {
        if (ops_.interrupt_table_invalidated) {
            ops_.interrupt_table_invalidated(opaque_, devid);
        }
    }
    void device_table_changed(int devid) override
    {
        if (ops_.device_table_changed) {
            ops_.device_table_changed(opaque_, devid);
        }
    }
    uint64_t now_ns() override
    {
        return ops_.now_ns ? ops_.now_ns(opaque_) : 0;
    }
    void command_executed(const uint32_t cmd[4], uint64_t addr) override
    {
        if (ops_.command_executed) {
            ops_.command_executed(opaque_, cmd, addr);
        }
    }
    void fault_recorded(const IoguardFaultRecord &record) override
    {
        if (ops_.fault_recorded) {
            ops_.fault_recorded(opaque_, &record);
        }
    }
    void wake_at(uint64_t deadline_ns) override
    {
        if (ops_.wake_at) {
            ops_.wake_at(opaque_, deadline_ns);
        }
    }
    void iommu_pages_invalidated(int domain, uint64_t first,
                                 uint64_t last) override
    {
        if (ops_.iommu_pages_invalidated) {
            ops_.iommu_pages_invalidated(opaque_, domain, first, last);
        }
    }
    void device_iotlb_invalidated(uint16_t devid, uint64_t first,
                                  uint64_t last) override
    {
        if (ops_.device_iotlb_invalidated) {
            ops_.device_iotlb_invalidated(opaque_, devid, first, last);
        }
    }
    void page_response(uint16_t devid, bool pasid_valid, uint32_t pasid,
                       uint16_t group, unsigned code) override
    {
        if (ops_.page_response) {
            ops_.page_response(opaque_, devid, pasid_valid, pasid, group,
                               code);
        }
    }

private:
    const IoguardHostOps ops_;
    void *const opaque_;
};

} // namespace

// The AMD-Vi core and, beside it, the parts its configuration asks for,
// each subscribed to the translations it needs to hear.
struct IoguardIommu {
    CHost host;
    ioguard::Iommu iommu;
    std::optional<ioguard::DmaVerifier> verifier;
    std::optional<ioguard::Prefetcher> prefetcher;

    IoguardIommu(const IoguardHostOps &ops, void *opaque,
                 const ioguard::Config &config, bool verify,
                 const ioguard::PrefetcherConfig &prefetch)
        : host(ops, opaque), iommu(host, config)
    {
        if (verify) {
            iommu.subscribe(verifier.emplace(host, iommu.fault_records()));
        }
        if (prefetch.depth || prefetch.latency_model) {
            iommu.subscribe(
                prefetcher.emplace(iommu, iommu.statistics(), prefetch));
        }
    }
};

extern "C" {

IoguardIommu *ioguard_iommu_new(const IoguardHostOps *ops, void *opaque,
                                const IoguardConfig *config)
{
    ioguard::Config c;
    c.intremap = config->intremap;
    c.ga = config->ga;
    c.xtsup = config->xtsup;
    c.guest_translation = config->guest_translation;
    c.stats = config->stats;
    c.fault_records = config->fault_records;
    c.faults = config->faults ? &config->faults->injector : nullptr;
    ioguard::PrefetcherConfig prefetch;
    prefetch.depth = std::min(config->prefetch_depth,
                              unsigned{IOGUARD_PREFETCH_DEPTH_MAX});
    prefetch.latency_model = config->latency_model;
    prefetch.round_trip_ns = config->round_trip_ns;
    prefetch.walk_read_ns = config->walk_read_ns;
    return new (std::nothrow)
        IoguardIommu(*ops, opaque, c, config->verifier, prefetch);
}

void ioguard_iommu_free(IoguardIommu *iommu) { delete iommu; }

void ioguard_iommu_reset(IoguardIommu *iommu) { iommu->iommu.reset(); }

uint64_t ioguard_iommu_mmio_read(IoguardIommu *iommu, uint64_t offset,
                                 unsigned size)
{
    return iommu->iommu.mmio_read(offset, size);
}

void ioguard_iommu_mmio_write(IoguardIommu *iommu, uint64_t offset,
                              uint64_t value, unsigned size)
{
    iommu->iommu.mmio_write(offset, value, size);
}

uint64_t ioguard_iommu_efr(const IoguardIommu *iommu)
{
    return iommu->iommu.extended_features();
}

void ioguard_iommu_translate(IoguardIommu *iommu, uint16_t devid,
                             uint64_t iova, unsigned perm,
                             IoguardTranslation *out)
{
    // Constructed in *out, not copied there: the copy read the result,
    // just written as 8-byte stores, as one 16-byte load, which stalls on
    // store forwarding (about 5 ns of the IOTLB hit).
    new (out) IoguardTranslation(iommu->iommu.translate(devid, iova, perm));
}

void ioguard_iommu_translate_pasid(IoguardIommu *iommu, uint16_t devid,
                                   uint32_t pasid, bool privileged,
                                   uint64_t iova, unsigned perm,
                                   IoguardTranslation *out)
{
    *out = iommu->iommu.translate_pasid(devid, pasid, privileged, iova, perm);
}

unsigned ioguard_iommu_page_request(IoguardIommu *iommu,
                                    const IoguardPageRequest *request)
{
    return iommu->iommu.page_request(*request);
}

bool ioguard_iommu_remap_msi(IoguardIommu *iommu, uint16_t devid,
                             const IoguardMsi *in, IoguardMsi *out)
{
    return iommu->iommu.remap_msi(devid, *in, *out);
}

bool ioguard_iommu_dma_is_identity(IoguardIommu *iommu, uint16_t devid)
{
    return iommu->iommu.dma_is_identity(devid);
}

bool ioguard_iommu_translating_domain(IoguardIommu *iommu, uint16_t devid,
                                      uint16_t *domain)
{
    const auto d = iommu->iommu.translating_domain(devid);
    if (d) {
        *domain = *d;
    }
    return d.has_value();
}

void ioguard_iommu_get_stats(IoguardIommu *iommu, IoguardStats *stats)
{
    *stats = iommu->iommu.stats();
}

void ioguard_iommu_for_each_requester(IoguardIommu *iommu,
                                      void (*fn)(const IoguardRequesterStats *,
                                                 void *opaque),
                                      void *opaque)
{
    iommu->iommu.statistics().for_each_requester(
        [fn, opaque](const IoguardRequesterStats &s) { fn(&s, opaque); });
}

bool ioguard_iommu_get_requester_stats(IoguardIommu *iommu, uint16_t devid,
                                       IoguardRequesterStats *stats)
{
    return iommu->iommu.statistics().read_requester(devid, *stats);
}

void ioguard_iommu_reset_stats(IoguardIommu *iommu)
{
    iommu->iommu.statistics().clear();
}

size_t ioguard_iommu_get_fault_records(IoguardIommu *iommu,
                                       IoguardFaultRecord *out, size_t max,
                                       uint64_t *overwritten)
{
    uint64_t lost = 0;
    const auto records = iommu->iommu.fault_records(lost);
    for (size_t i = 0; i < records.size() && i < max; i++) {
        out[i] = records[i];
    }
    if (overwritten) {
        *overwritten = lost;
    }
    return records.size();
}

void ioguard_iommu_clear_fault_records(IoguardIommu *iommu)
{
    iommu->iommu.clear_fault_records();
}

void ioguard_iommu_walk_mappings(IoguardIommu *iommu, uint16_t devid,
                                 int32_t pasid, bool privileged,
                                 uint64_t start, uint64_t max_ranges,
                                 uint64_t max_tables,
                                 void (*fn)(const IoguardMapping *,
                                            void *opaque),
                                 void *opaque, IoguardMappingWalk *result)
{
    const uint32_t tag = pasid < 0 ? ioguard::kHostTables : uint32_t(pasid);
    *result = iommu->iommu.walk_mappings(
        {devid, tag, privileged && pasid >= 0, start, ~uint64_t{0},
         max_ranges, max_tables, true},
        [fn, opaque](const IoguardMapping &m) { fn(&m, opaque); });
}

void ioguard_iommu_walk_page_entries(IoguardIommu *iommu, uint16_t devid,
                                     uint64_t start, uint64_t end,
                                     uint64_t max_entries,
                                     uint64_t max_tables,
                                     void (*fn)(const IoguardMapping *,
                                                void *opaque),
                                     void *opaque, IoguardMappingWalk *result)
{
    *result = iommu->iommu.walk_mappings(
        {devid, ioguard::kHostTables, false, start, end, max_entries,
         max_tables, false},
        [fn, opaque](const IoguardMapping &m) { fn(&m, opaque); });
}

uint64_t ioguard_iommu_device_iotlb_generation(IoguardIommu *iommu)
{
    return iommu->verifier ? iommu->verifier->device_iotlb_generation() : 0;
}

void ioguard_iommu_ats_used(IoguardIommu *iommu, uint16_t devid,
                            int32_t pasid, bool privileged, uint64_t iova,
                            uint64_t target, unsigned access,
                            uint64_t generation)
{
    if (!iommu->verifier) {
        return;
    }
    IoguardDeviceInfo dev = iommu->iommu.read_device(devid);
    const uint32_t tag = pasid < 0 ? ioguard::kHostTables : uint32_t(pasid);
    if (pasid >= 0) {
        dev.dma = iommu->iommu.pasid_dma(devid, tag);
    }
    iommu->verifier->ats_used(
        devid, dev,
        {tag, privileged && pasid >= 0, iova, target, access, generation});
}

bool ioguard_iommu_lookup_page(IoguardIommu *iommu, uint16_t devid,
                               uint64_t iova, IoguardMapping *m)
{
    return iommu->iommu.lookup_page(devid, iova, *m);
}

void ioguard_iommu_read_device(IoguardIommu *iommu, uint16_t devid,
                               IoguardDeviceInfo *info)
{
    *info = iommu->iommu.read_device(devid);
}

bool ioguard_iommu_for_each_irte(IoguardIommu *iommu, uint16_t devid,
                                 void (*fn)(const IoguardIrte *, void *opaque),
                                 void *opaque)
{
    return iommu->iommu.for_each_irte(
        devid, [fn, opaque](const IoguardIrte &e) { fn(&e, opaque); });
}

bool ioguard_iommu_for_each_pasid(IoguardIommu *iommu, uint16_t devid,
                                  unsigned max,
                                  void (*fn)(const IoguardPasidEntry *,
                                             void *opaque),
                                  void *opaque)
{
    return iommu->iommu.for_each_pasid(
        devid, max,
        [fn, opaque](const IoguardPasidEntry &e) { fn(&e, opaque); });
}

} // extern "C"

int ioguard_parse_streaming_rules(const char *text, IoguardStreamingRule *out,
                                  size_t max, char *error, size_t error_len)
{
    std::vector<IoguardStreamingRule> rules;
    std::string message;
    if (!ioguard::parse_streaming_rules(text ? text : "", rules, message)) {
        snprintf(error, error_len, "%s", message.c_str());
        return -1;
    }
    if (rules.size() > max) {
        snprintf(error, error_len, "more than %zu rules", max);
        return -1;
    }
    std::copy(rules.begin(), rules.end(), out);
    return int(rules.size());
}

bool ioguard_iommu_add_streaming_rule(IoguardIommu *iommu,
                                      const IoguardStreamingRule *rule)
{
    return iommu->iommu.streaming_policy().add(*rule);
}

bool ioguard_iommu_remove_streaming_rule(IoguardIommu *iommu,
                                         const IoguardStreamingRule *rule)
{
    return iommu->iommu.streaming_policy().remove(*rule);
}

size_t ioguard_iommu_streaming_rules(IoguardIommu *iommu,
                                     IoguardStreamingRule *out, size_t max)
{
    const auto rules = iommu->iommu.streaming_policy().rules();
    for (size_t i = 0; i < rules.size() && i < max; i++) {
        out[i] = rules[i];
    }
    return rules.size();
}

bool ioguard_iommu_guest_streaming_enabled(IoguardIommu *iommu)
{
    return iommu->iommu.guest_streaming_enabled();
}

void ioguard_iommu_faults_changed(IoguardIommu *iommu)
{
    iommu->iommu.faults_changed();
}

void ioguard_iommu_run_timers(IoguardIommu *iommu)
{
    iommu->iommu.run_timers();
}

uint8_t *ioguard_iommu_save_state(IoguardIommu *iommu, size_t *size)
{
    const std::vector<uint8_t> state = iommu->iommu.save_state();
    auto *out = static_cast<uint8_t *>(malloc(state.size()));
    if (out) {
        std::copy(state.begin(), state.end(), out);
    }
    *size = out ? state.size() : 0;
    return out;
}

bool ioguard_iommu_load_state(IoguardIommu *iommu, const uint8_t *data,
                              size_t size)
{
    return iommu->iommu.load_state(data, size);
}
