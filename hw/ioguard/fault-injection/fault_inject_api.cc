// The extern "C" face of fault injection (include/hw/ioguard/fault-inject.h).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#include "fault_inject_api.hh"
#include "snapshot.hh"
#include "hw/ioguard/fault-inject.h"

using ioguard::FaultAction;
using ioguard::FaultSite;
using ioguard::FiredFault;

static_assert(unsigned(FaultSite::NicLink) == IOGUARD_FAULT_SITE_NIC_LINK &&
              unsigned(FaultSite::DeviceIotlb) ==
                  IOGUARD_FAULT_SITE_DEVICE_IOTLB &&
              unsigned(FaultSite::PageResponse) ==
                  IOGUARD_FAULT_SITE_PAGE_RESPONSE &&
              IOGUARD_FAULT_SITES == IOGUARD_FAULT_SITE_PAGE_RESPONSE + 1);
static_assert(unsigned(FaultAction::LinkFlap) ==
              IOGUARD_FAULT_ACTION_LINK_FLAP);
static_assert(ioguard::FaultInjector::kMaxRecords == IOGUARD_FAULTS_FIRED_MAX);

namespace
{

IoguardFiredFault to_c(const FiredFault &f)
{
    IoguardFiredFault out{};
    out.seq = f.sequence;
    out.rule = f.rule_id;
    out.time_ns = f.now_ns;
    out.site = unsigned(f.site);
    out.action = unsigned(f.action);
    out.delay_ns = f.delay_ns;
    out.hit.requester = f.hit.requester;
    out.hit.address = f.hit.address;
    out.hit.write = f.hit.write;
    out.hit.opcode = f.hit.opcode;
    return out;
}

std::string site_list(uint32_t sites)
{
    std::string out;
    for (unsigned s = 0; s < IOGUARD_FAULT_SITES; s++) {
        if (sites & (1u << s)) {
            out.append(out.empty() ? "" : ", ")
                .append(ioguard::fault_site_name(FaultSite(s)));
        }
    }
    return out;
}

} // namespace

extern "C" {

IoguardFaults *ioguard_faults_new(uint64_t seed)
{
    return new (std::nothrow) IoguardFaults(seed);
}

void ioguard_faults_free(IoguardFaults *faults)
{
    delete faults;
}

uint64_t ioguard_faults_seed(IoguardFaults *faults)
{
    return faults->injector.seed();
}

uint32_t ioguard_faults_add(IoguardFaults *faults, const char *text,
                            uint64_t now_ns, uint32_t only_sites, char *error,
                            size_t error_len)
{
    ioguard::FaultRule rule;
    std::string message;
    if (!ioguard::parse_fault_rule(text ? text : "", rule, message)) {
        snprintf(error, error_len, "%s", message.c_str());
        return 0;
    }
    if (!(only_sites & (1u << unsigned(rule.site)))) {
        snprintf(error, error_len, "site=%s is not on this device (it has %s)",
                 ioguard::fault_site_name(rule.site),
                 site_list(only_sites).c_str());
        return 0;
    }
    return faults->injector.add(rule, now_ns);
}

bool ioguard_faults_remove(IoguardFaults *faults, uint32_t id)
{
    return faults->injector.remove(id);
}

size_t ioguard_faults_rules(IoguardFaults *faults, IoguardFaultRuleEntry *out,
                            size_t max)
{
    const auto rules = faults->injector.rules();
    for (size_t i = 0; i < rules.size() && i < max; i++) {
        out[i].id = rules[i].id;
        snprintf(out[i].text, sizeof(out[i].text), "%s",
                 ioguard::format_fault_rule(rules[i].rule).c_str());
        out[i].matches = rules[i].matches;
        out[i].fired = rules[i].fired;
    }
    return rules.size();
}

size_t ioguard_faults_fired(IoguardFaults *faults, IoguardFiredFault *out,
                            size_t max, uint64_t *dropped)
{
    const auto fired = faults->injector.fired();
    for (size_t i = 0; i < fired.size() && i < max; i++) {
        out[i] = to_c(fired[i]);
    }
    if (dropped) {
        *dropped = faults->injector.fired_dropped();
    }
    return fired.size();
}

bool ioguard_faults_armed(IoguardFaults *faults, unsigned site)
{
    return site < IOGUARD_FAULT_SITES &&
           faults->injector.armed(FaultSite(site));
}

bool ioguard_faults_check(IoguardFaults *faults, unsigned site,
                          const IoguardFaultHit *hit, uint64_t now_ns,
                          IoguardFiredFault *fired)
{
    if (!ioguard_faults_armed(faults, site)) {
        return false;
    }
    const auto f = faults->injector.check(
        FaultSite(site),
        {hit->requester, hit->address, hit->write, hit->opcode, now_ns});
    if (f && fired) {
        *fired = to_c(*f);
    }
    return bool(f);
}

void ioguard_faults_set_listener(IoguardFaults *faults,
                                 void (*fn)(const IoguardFiredFault *,
                                            void *opaque),
                                 void *opaque)
{
    if (!fn) {
        faults->injector.set_listener(nullptr);
        return;
    }
    faults->injector.set_listener([fn, opaque](const FiredFault &f) {
        const IoguardFiredFault c = to_c(f);
        fn(&c, opaque);
    });
}

uint8_t *ioguard_faults_save(IoguardFaults *faults, size_t *size)
{
    ioguard::StateWriter out;
    faults->injector.save(out);
    auto *bytes = static_cast<uint8_t *>(malloc(out.bytes.size()));
    if (bytes) {
        std::copy(out.bytes.begin(), out.bytes.end(), bytes);
    }
    *size = bytes ? out.bytes.size() : 0;
    return bytes;
}

bool ioguard_faults_load(IoguardFaults *faults, const uint8_t *data,
                         size_t size)
{
    ioguard::StateReader in(data, size);
    ioguard::StateReader check(data, size);
    ioguard::FaultInjector scratch(faults->injector.seed());
    // All or nothing: the whole state must read before any of it is used.
    if (!scratch.load(check) || !check.done()) {
        return false;
    }
    return faults->injector.load(in);
}

const char *ioguard_fault_site_name(unsigned site)
{
    return site < IOGUARD_FAULT_SITES
               ? ioguard::fault_site_name(FaultSite(site))
               : "?";
}

const char *ioguard_fault_action_name(unsigned action)
{
    return action <= IOGUARD_FAULT_ACTION_LINK_FLAP
               ? ioguard::fault_action_name(FaultAction(action))
               : "?";
}

} // extern "C"
