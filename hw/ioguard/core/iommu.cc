// Register file, reset and event logging of the engine.
#include "iommu.hh"

#include <cstdarg>
#include <cstdio>

#include "bits.hh"
#include "hw/ioguard/amd-vi-regs.h"

namespace ioguard {

namespace {

// What the engine implements, and nothing else: PREFETCH_IOMMU_PAGES,
// INVALIDATE_IOMMU_ALL, 6-level host tables, and optionally 128-bit IRTEs,
// x2APIC and guest translation.
uint64_t make_efr(const Config &c)
{
    uint64_t efr = FEATURE_PREFETCH | FEATURE_IA | FEATURE_HATS_6_LEVELS;
    if (c.ga) {
        efr |= FEATURE_GA;
    }
    if (c.xtsup) {
        efr |= FEATURE_X2APIC;
    }
    if (c.guest_translation) {
        // 4- and 5-level v2 tables, GCR3 tables of up to 2 levels (18
        // PASID bits), 16-bit PASIDs (Linux BUG()s above 16), and GIoV.
        // The PPR log and EPHSup: Linux 6.12 enables PRI and SVA only
        // with GT, PPRSup and EPHSup (amd_iommu_gt_ppr_supported).
        efr |= FEATURE_GT | FEATURE_GATS_5_LEVELS |
               uint64_t{1} << FEATURE_GLX_SHIFT |
               uint64_t{15} << FEATURE_PASMAX_SHIFT | FEATURE_GIOSUP |
               FEATURE_PPR | FEATURE_EPHSUP;
    }
    return efr;
}

constexpr uint64_t kStatusW1C =
    MMIO_STATUS_EVT_OVERFLOW_MASK | MMIO_STATUS_EVT_INT_MASK |
    MMIO_STATUS_COM_WAIT_INT_MASK | MMIO_STATUS_PPR_OVERFLOW_MASK |
    MMIO_STATUS_PPR_INT_MASK | MMIO_STATUS_GALOG_OVERFLOW_MASK |
    MMIO_STATUS_GALOG_INT_MASK;

// Identical DMA-path events closer together than this are one event.
constexpr uint64_t kFaultCoalesceNs = 1000000;

} // namespace

Iommu::Iommu(Host &host, const Config &config)
    : host_(host), config_(config), efr_(make_efr(config)),
      fault_records_(host, config.fault_records), stats_(config.stats),
      event_observers_{&stats_, &fault_records_}
{
}

void Iommu::reset()
{
    std::lock_guard<std::mutex> guard(lock_);
    dev_table_base_ = cmd_base_ = cmd_head_ = cmd_tail_ = 0;
    control_ = status_ = 0;
    excl_base_ = excl_limit_ = 0;
    ga_log_base_ = ga_log_tail_addr_ = ga_head_ = ga_tail_ = 0;
    intcapxt_ = {};
    event_log_ = LogBuffer{};
    ppr_log_ = LogBuffer{};
    last_dma_event_ = Event{};
    enabled_ = false;
    ga_enabled_ = false;
    guest_translation_enabled_ = false;
    device_table_.set_base(0);
    guest_streaming_ = false;
    for (TranslationObserver *observer : translation_observers_) {
        observer->forget();
    }
    iotlb_.invalidate_iommu_all();
    directory_cache_.invalidate_iommu_all();
    delayed_waits_.clear();
    delayed_host_.clear();
    delayed_responses_.clear();
    {
        std::lock_guard<std::mutex> remembered_guard(remembered_lock_);
        remembered_.clear();
    }
}

void Iommu::guest_error(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    host_.guest_error(buf);
}

uint64_t Iommu::command_buffer_size() const
{
    unsigned len = bits(cmd_base_, 59, 56);
    if (len < 8) {
        len = 8;    // 0000b..0111b are reserved; the smallest ring is 256
    }
    return (uint64_t{1} << len) * IOGUARD_CMD_SIZE;
}

// Accesses of 1 to 8 bytes, split per 64-bit register they touch.
uint64_t Iommu::mmio_read(uint64_t offset, unsigned size)
{
    std::lock_guard<std::mutex> guard(lock_);
    uint64_t result = 0;
    for (unsigned i = 0; i < size && i < 8; i++) {
        const uint64_t at = offset + i;
        const uint64_t reg = read_register(at & ~uint64_t{7});
        result |= ((reg >> (8 * (at & 7))) & 0xff) << (8 * i);
    }
    return result;
}

void Iommu::mmio_write(uint64_t offset, uint64_t value, unsigned size)
{
    std::lock_guard<std::mutex> guard(lock_);
    unsigned done = 0;
    while (done < size && done < 8) {
        const uint64_t at = offset + done;
        const uint64_t reg_offset = at & ~uint64_t{7};
        uint64_t merged = read_register(reg_offset);
        uint64_t written = 0;
        for (; done < size && done < 8 && ((offset + done) & ~uint64_t{7}) ==
                                              reg_offset;
             done++) {
            const unsigned shift = 8 * ((offset + done) & 7);
            const uint64_t byte = (value >> (8 * done)) & 0xff;
            merged = (merged & ~(uint64_t{0xff} << shift)) | (byte << shift);
            written |= uint64_t{0xff} << shift;
        }
        write_register(reg_offset, merged, written);
    }
}

uint64_t Iommu::read_register(uint64_t offset)
{
    switch (offset) {
    case MMIO_DEV_TABLE_OFFSET: return dev_table_base_;
    case MMIO_CMD_BUF_OFFSET: return cmd_base_;
    case MMIO_EVT_BUF_OFFSET: return event_log_.base_register;
    case MMIO_CONTROL_OFFSET: return control_;
    case MMIO_EXCL_BASE_OFFSET: return excl_base_;
    case MMIO_EXCL_LIMIT_OFFSET: return excl_limit_;
    case MMIO_EXT_FEATURES: return efr_;
    case MMIO_PPR_LOG_OFFSET: return ppr_log_.base_register;
    case MMIO_GA_LOG_BASE_OFFSET: return ga_log_base_;
    case MMIO_GA_LOG_TAIL_OFFSET: return ga_log_tail_addr_;
    case MMIO_INTCAPXT_EVT_OFFSET: return intcapxt_[0];
    case MMIO_INTCAPXT_PPR_OFFSET: return intcapxt_[1];
    case MMIO_INTCAPXT_GALOG_OFFSET: return intcapxt_[2];
    case MMIO_EXT_FEATURES2: return 0;
    case MMIO_CMD_HEAD_OFFSET: return cmd_head_;
    case MMIO_CMD_TAIL_OFFSET: return cmd_tail_;
    case MMIO_EVT_HEAD_OFFSET: return event_log_.head;
    case MMIO_EVT_TAIL_OFFSET: return event_log_.tail;
    case MMIO_STATUS_OFFSET: return status_;
    case MMIO_PPR_HEAD_OFFSET: return ppr_log_.head;
    case MMIO_PPR_TAIL_OFFSET: return ppr_log_.tail;
    case MMIO_GA_HEAD_OFFSET: return ga_head_;
    case MMIO_GA_TAIL_OFFSET: return ga_tail_;
    case IOGUARD_MMIO_ID: return IOGUARD_ID_VALUE;
    case IOGUARD_MMIO_FEATURES: return IOGUARD_FEATURE_STREAMING;
    case IOGUARD_MMIO_CONTROL:
        return guest_streaming_ ? IOGUARD_CONTROL_STREAMING_EN : 0;
    default: return 0;
    }
}

// value: the register's new contents (bytes not written keep their old
// value); written: which bytes the access wrote.
void Iommu::write_register(uint64_t offset, uint64_t value, uint64_t written)
{
    switch (offset) {
    case MMIO_DEV_TABLE_OFFSET:
        dev_table_base_ = value & (IOGUARD_BASE_ADDR_MASK |
                                   IOGUARD_DEV_TABLE_SIZE_MASK);
        device_table_.set_base(dev_table_base_);
        host_.device_table_changed(-1);
        break;
    case MMIO_CMD_BUF_OFFSET:
        cmd_base_ = value & (IOGUARD_BASE_ADDR_MASK | (0xfULL << 56));
        cmd_head_ = cmd_tail_ = 0;
        break;
    case MMIO_EVT_BUF_OFFSET:
        event_log_.set_base(value);
        break;
    case MMIO_CONTROL_OFFSET:
        write_control(value);
        break;
    case MMIO_EXCL_BASE_OFFSET:
        excl_base_ = value;
        if (value & 1) {
            guest_error("exclusion range enabled (0x%llx): not implemented, "
                        "DMA to it is still translated",
                        (unsigned long long)value);
        }
        break;
    case MMIO_EXCL_LIMIT_OFFSET: excl_limit_ = value; break;
    case MMIO_PPR_LOG_OFFSET: ppr_log_.set_base(value); break;
    case MMIO_GA_LOG_BASE_OFFSET: ga_log_base_ = value; break;
    case MMIO_GA_LOG_TAIL_OFFSET: ga_log_tail_addr_ = value; break;
    case MMIO_INTCAPXT_EVT_OFFSET: intcapxt_[0] = value; break;
    case MMIO_INTCAPXT_PPR_OFFSET: intcapxt_[1] = value; break;
    case MMIO_INTCAPXT_GALOG_OFFSET: intcapxt_[2] = value; break;
    case MMIO_CMD_HEAD_OFFSET:
        cmd_head_ = value & IOGUARD_RING_PTR_MASK & (command_buffer_size() - 1);
        break;
    case MMIO_CMD_TAIL_OFFSET:
        cmd_tail_ = value & IOGUARD_RING_PTR_MASK & (command_buffer_size() - 1);
        process_commands();
        break;
    case MMIO_EVT_HEAD_OFFSET:
        event_log_.set_head(value);
        break;
    case MMIO_EVT_TAIL_OFFSET:
        event_log_.set_tail(value);
        break;
    case MMIO_STATUS_OFFSET:
        status_ &= ~(value & written & kStatusW1C);
        break;
    case MMIO_PPR_HEAD_OFFSET: ppr_log_.set_head(value); break;
    case MMIO_PPR_TAIL_OFFSET: ppr_log_.set_tail(value); break;
    case MMIO_GA_HEAD_OFFSET: ga_head_ = value & IOGUARD_RING_PTR_MASK; break;
    case MMIO_GA_TAIL_OFFSET: ga_tail_ = value & IOGUARD_RING_PTR_MASK; break;
    case IOGUARD_MMIO_CONTROL:
        // Cached entries keep their PTE bit; whether it counts is decided
        // on each translation, so nothing needs flushing.
        guest_streaming_ = value & IOGUARD_CONTROL_STREAMING_EN;
        break;
    default:
        break;  // read-only (EFR) or not a register: writes are ignored
    }
}

void Iommu::write_control(uint64_t value)
{
    const uint64_t old = control_;
    control_ = value;
    auto rose = [&](unsigned b) { return !test(old, b) && test(value, b); };
    auto fell = [&](unsigned b) { return test(old, b) && !test(value, b); };

    if (rose(CONTROL_IOMMU_EN) || fell(CONTROL_IOMMU_EN)) {
        // Nothing cached while the IOMMU was off (or before) may be used.
        device_table_.invalidate_all();
        iotlb_.invalidate_iommu_all();
        directory_cache_.invalidate_iommu_all();
        enabled_ = test(value, CONTROL_IOMMU_EN);
        host_.device_table_changed(-1);
    }
    ga_enabled_ = test(value, CONTROL_GA_EN);
    if (rose(CONTROL_GT_EN) || fell(CONTROL_GT_EN)) {
        // DTE.GV starts or stops counting: what was cached either way goes.
        device_table_.invalidate_all();
        iotlb_.invalidate_iommu_all();
        directory_cache_.invalidate_iommu_all();
        guest_translation_enabled_ =
            config_.guest_translation && test(value, CONTROL_GT_EN);
        host_.device_table_changed(-1);
    }
    if (rose(CONTROL_EVT_LOG_EN)) {
        status_ |= MMIO_STATUS_EVT_RUN_MASK;
    } else if (fell(CONTROL_EVT_LOG_EN)) {
        status_ &= ~uint64_t{MMIO_STATUS_EVT_RUN_MASK};
    }
    if (rose(CONTROL_PPRLOG_EN)) {
        status_ |= MMIO_STATUS_PPR_RUN_MASK;
    } else if (fell(CONTROL_PPRLOG_EN)) {
        status_ &= ~uint64_t{MMIO_STATUS_PPR_RUN_MASK};
    }
    if (rose(CONTROL_CMDBUF_EN)) {
        status_ |= MMIO_STATUS_CMDBUF_RUN_MASK;
    } else if (fell(CONTROL_CMDBUF_EN)) {
        status_ &= ~uint64_t{MMIO_STATUS_CMDBUF_RUN_MASK};
    }
    if (rose(CONTROL_IOMMU_EN) || rose(CONTROL_CMDBUF_EN)) {
        process_commands();
    }
}

// The IOMMU's own interrupt: its PCI function's MSI, or in x2APIC mode
// (IntCapXTEn) the message the log's INTCAPXT register describes: DM in
// bit 2, destination 31:8 and 63:56, vector 39:32, fixed and
// edge-triggered.
void Iommu::signal_locked(uint32_t status_bit, unsigned enable_bit,
                          XtInterrupt which)
{
    status_ |= status_bit;
    if (!test(control_, enable_bit)) {
        return;
    }
    if (!test(control_, CONTROL_INTCAPXT_EN)) {
        host_.raise_interrupt();
        return;
    }
    const uint64_t xt = intcapxt_[unsigned(which)];
    const uint32_t dest = uint32_t(bits(xt, 31, 8) | bits(xt, 63, 56) << 24);
    const uint64_t address = IOGUARD_MSI_ADDR_FIRST |
                             uint64_t(dest & 0xff) << 12 | (xt & 4) |
                             uint64_t(dest & 0xffffff00) << 32;
    host_.deliver_msi(address, uint32_t(bits(xt, 39, 32)));
}

// Events of the DMA and interrupt paths. QEMU splits a refused DMA into
// many small accesses that each fault again; real hardware reports the
// transaction once, so identical events close together are one.
void Iommu::log_event(const Event &ev, FaultReason reason)
{
    std::lock_guard<std::mutex> guard(lock_);
    const uint64_t now = host_.now_ns();
    const Event &l = last_dma_event_;
    if (l.dw[0] == ev.dw[0] && l.dw[1] == ev.dw[1] &&
        (l.address() >> 12) == (ev.address() >> 12) &&
        now - last_dma_event_ns_ < kFaultCoalesceNs) {
        return;
    }
    last_dma_event_ = ev;
    last_dma_event_ns_ = now;
    log_event_locked(ev, reason);
}

void Iommu::log_event_locked(const Event &ev, FaultReason reason)
{
    if (!test(control_, CONTROL_EVT_LOG_EN) ||
        !(status_ & MMIO_STATUS_EVT_RUN_MASK)) {
        event_generated(ev, reason,
                        test(control_, CONTROL_EVT_LOG_EN)
                            ? Delivery::LogStopped
                            : Delivery::LogDisabled);
        return;
    }
    const auto fired = inject(FaultSite::EventLog,
                              {uint16_t(ev.has_requester() ? ev.devid() : 0),
                               ev.address(), false, -1});
    if (fired && fired->action == FaultAction::Drop) {
        event_generated(ev, reason, Delivery::Injected);
        return;
    }
    // A rule's overflow: the log reports it exactly as if it were full.
    const LogBuffer::Outcome outcome =
        fired ? LogBuffer::Outcome::Overflow : event_log_.append(host_, ev.dw);
    event_generated(ev, reason,
                    fired                                    ? Delivery::Injected
                    : outcome == LogBuffer::Outcome::Logged   ? Delivery::Logged
                    : outcome == LogBuffer::Outcome::Overflow ? Delivery::LogFull
                                                 : Delivery::LogNotInRam);
    switch (outcome) {
    case LogBuffer::Outcome::Logged:
        signal_locked(MMIO_STATUS_EVT_INT_MASK, CONTROL_EVT_INT_EN);
        break;
    case LogBuffer::Outcome::Overflow:
        status_ &= ~uint64_t{MMIO_STATUS_EVT_RUN_MASK};
        signal_locked(MMIO_STATUS_EVT_OVERFLOW_MASK, CONTROL_EVT_INT_EN);
        break;
    case LogBuffer::Outcome::WriteError:
        status_ &= ~uint64_t{MMIO_STATUS_EVT_RUN_MASK};
        guest_error("event log at 0x%llx is not in RAM: event log stopped",
                    (unsigned long long)event_log_.base());
        break;
    }
}

void Iommu::event_generated(const Event &ev, FaultReason reason,
                            Delivery delivery)
{
    for (EventObserver *observer : event_observers_) {
        observer->event(ev, reason, delivery);
    }
}

} // namespace ioguard
