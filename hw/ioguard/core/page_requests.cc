// Peripheral page requests (PCIe PRI): a device whose translation request
// was refused asks for the page; the IOMMU writes a PAGE_SERVICE_REQUEST
// entry to the PPR log and interrupts; software makes the page present (or
// not) and answers with COMPLETE_PPR_REQUEST, which the IOMMU sends the
// device as a PRG response. Offered with guest translation (PPRSup).
#include "bits.hh"
#include "hw/ioguard/amd-vi-regs.h"
#include "iommu.hh"

namespace ioguard {

namespace {

// The PPR log entry (amd-vi-regs.h: PPR_*), as four little-endian dwords.
void ppr_log_entry(const IoguardPageRequest &r, uint16_t tag,
                   uint32_t entry[4])
{
    const uint32_t pasid = r.pasid_valid ? r.pasid : 0;
    unsigned flags = 0;
    flags |= (r.perm & IOGUARD_PERM_READ) ? PPR_FLAG_READ : 0;
    flags |= (r.perm & IOGUARD_PERM_WRITE) ? PPR_FLAG_WRITE : 0;
    flags |= r.exec ? PPR_FLAG_EXEC : 0;
    flags |= r.privileged ? 0 : PPR_FLAG_US;
    flags |= r.pasid_valid ? PPR_FLAG_GN : 0;
    const uint64_t address = r.address & ~uint64_t{0xfff};
    entry[0] = r.devid | (pasid & 0xffff) << 16;
    entry[1] = tag | ((pasid >> 16) & 0xf) << 10 | flags << 16 |
               uint32_t{PPR_REQ_FAULT} << 28;
    entry[2] = uint32_t(address);
    entry[3] = uint32_t(address >> 32);
}

} // namespace

// Software can be asked about a request only if PPREn is set, the
// requester's DTE is valid, legal and has PPR set, and its PASID is one
// this IOMMU has.
bool Iommu::page_request_valid(const IoguardPageRequest &r)
{
    if (!test(control_, CONTROL_PPR_EN) ||
        (r.pasid_valid && r.pasid > kMaxPasid)) {
        return false;
    }
    DteLocation where;
    const auto dte = device_table_.read(r.devid, where);
    return dte && dte->valid() && !dte->illegal() && dte->ppr_enabled();
}

unsigned Iommu::page_request(const IoguardPageRequest &r)
{
    std::lock_guard<std::mutex> guard(lock_);
    bump(stats_.requester(r.devid), &RequesterCounters::page_requests);
    if (!config_.guest_translation || !test(control_, CONTROL_IOMMU_EN)) {
        return IOGUARD_PAGE_REQUEST_FAILED;
    }
    const uint16_t tag = (r.group & 0x1ff) | (r.last ? PPR_TAG_LAST : 0);
    if (!page_request_valid(r)) {
        log_event_locked(Event::invalid_ppr_request(
                             r.devid, r.pasid_valid ? r.pasid : 0, tag,
                             r.address & ~uint64_t{0xfff}),
                         FaultReason::InvalidPageRequest);
        return IOGUARD_PAGE_REQUEST_INVALID;
    }
    if (!test(control_, CONTROL_PPRLOG_EN) ||
        !(status_ & MMIO_STATUS_PPR_RUN_MASK)) {
        return IOGUARD_PAGE_REQUEST_FAILED;
    }
    // The page-request site: lost on the way (the device waits for an
    // answer that will not come), answered at once with a Response
    // Failure, or told that the log is full.
    const auto fired = inject(FaultSite::PageRequest,
                              {r.devid, r.address,
                               bool(r.perm & IOGUARD_PERM_WRITE)});
    if (fired && fired->action == FaultAction::Drop) {
        return IOGUARD_PAGE_REQUEST_LOGGED;
    }
    if (fired && fired->action == FaultAction::Fault) {
        return IOGUARD_PAGE_REQUEST_FAILED;
    }
    uint32_t entry[4];
    ppr_log_entry(r, tag, entry);
    switch (fired ? LogBuffer::Outcome::Overflow
                  : ppr_log_.append(host_, entry)) {
    case LogBuffer::Outcome::Logged:
        signal_locked(MMIO_STATUS_PPR_INT_MASK, CONTROL_PPRINT_EN,
                      XtInterrupt::PprLog);
        return IOGUARD_PAGE_REQUEST_LOGGED;
    case LogBuffer::Outcome::Overflow:
        // The log stops (PPRLogRun=0) until the driver re-enables it.
        status_ &= ~uint64_t{MMIO_STATUS_PPR_RUN_MASK};
        signal_locked(MMIO_STATUS_PPR_OVERFLOW_MASK, CONTROL_PPRINT_EN,
                      XtInterrupt::PprLog);
        return IOGUARD_PAGE_REQUEST_FAILED;
    case LogBuffer::Outcome::WriteError:
        status_ &= ~uint64_t{MMIO_STATUS_PPR_RUN_MASK};
        guest_error("PPR log at 0x%llx is not in RAM: PPR log stopped",
                    (unsigned long long)ppr_log_.base());
        return IOGUARD_PAGE_REQUEST_FAILED;
    }
    return IOGUARD_PAGE_REQUEST_FAILED;
}

// COMPLETE_PPR_REQUEST: dw0 DeviceID, dw1 PASID (with GN), dw2 GN, dw3 the
// PRG index and the response code. Everything else is reserved.
Iommu::CommandResult Iommu::complete_ppr_request(const uint32_t cmd[4],
                                                 uint64_t addr)
{
    const bool gn = cmd[2] & CMD_COMPLETE_PPR_GN_MASK;
    if ((cmd[0] & 0xffff0000u) || (cmd[1] & 0x0ff00000u) ||
        (!gn && (cmd[1] & 0xfffffu)) ||
        (cmd[2] & ~uint32_t{CMD_COMPLETE_PPR_GN_MASK}) ||
        (cmd[3] & 0xffff0e00u)) {
        guest_error("COMPLETE_PPR_REQUEST at 0x%llx has reserved bits set: "
                    "%08x %08x %08x %08x", (unsigned long long)addr, cmd[0],
                    cmd[1], cmd[2], cmd[3]);
        log_event_locked(Event::illegal_command_error(addr),
                         FaultReason::IllegalCommand);
        return CommandResult::Stop;
    }
    const uint16_t devid = cmd[0] & 0xffff;
    bump(stats_.requester(devid), &RequesterCounters::page_responses);
    send_page_response(devid, gn, gn ? cmd[1] & 0xfffff : 0, cmd[3] & 0x1ff,
                       (cmd[3] >> CMD_COMPLETE_PPR_STATUS_SHIFT) & 0xf);
    return CommandResult::Done;
}

} // namespace ioguard
