// The fault-rule language and the injector's decisions. The input's first
// line is a rule's text; the bytes after it are checks (site, requester,
// address, direction, opcode, time step), 16 bytes each.
//
// Invariants beyond "does not crash":
// - the parser refuses with a message, or accepts a rule whose canonical
//   text parses to the same rule and formats to the same text again;
// - a fault fires only at a check that passes the rule's site and filters
//   (checked here by a separate reading of the rule);
// - "when" means what it says: always fires at every match, once and
//   after:T at most once (after:T not before T), nth:N exactly at the Nth
//   match, every:N exactly at every Nth;
// - the same seed and checks give the same faults, in a new injector.
#include <cinttypes>
#include <cstring>
#include <string>
#include <vector>

#include "../../hw/ioguard/fault-injection/fault_rules.hh"
#include "fuzz_machine.hh"

using namespace ioguard;

namespace
{

struct Step {
    FaultSite site;
    FaultCheck check;
};

std::vector<Step> read_steps(const uint8_t *data, size_t size)
{
    std::vector<Step> steps;
    uint64_t now = 0;
    for (; size >= 16; data += 16, size -= 16) {
        Step s;
        s.site = FaultSite(data[0] % 10);
        memcpy(&s.check.requester, data + 1, 2);
        memcpy(&s.check.address, data + 3, 8);
        if (data[11] & 1) {
            s.check.address &= 0xffff; // small addresses hit small ranges
        }
        s.check.write = data[11] & 2;
        s.check.opcode = data[12] % 17 - 1;
        now += uint64_t(data[13]) << (data[14] % 40);
        s.check.now_ns = now;
        steps.push_back(s);
    }
    return steps;
}

bool passes_filters(const FaultRule &r, FaultSite site, const FaultCheck &c)
{
    if (site != r.site) {
        return false;
    }
    if (!r.any_requester && c.requester != r.requester) {
        return false;
    }
    if (c.address < r.first || c.address > r.last) {
        return false;
    }
    if ((c.write && !r.writes) || (!c.write && !r.reads)) {
        return false;
    }
    return r.opcode < 0 || c.opcode == r.opcode;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *newline =
        static_cast<const uint8_t *>(memchr(data, '\n', size));
    const size_t text_len = newline ? size_t(newline - data) : size;
    const std::string text(reinterpret_cast<const char *>(data), text_len);
    FaultRule rule;
    std::string error;
    if (!parse_fault_rule(text, rule, error)) {
        FUZZ_CHECK(!error.empty(), "refused without a message: '%s'",
                   text.c_str());
        return 0;
    }
    const std::string canonical = format_fault_rule(rule);
    FaultRule again;
    FUZZ_CHECK(parse_fault_rule(canonical, again, error),
               "'%s' gave canonical '%s': %s", text.c_str(), canonical.c_str(),
               error.c_str());
    FUZZ_CHECK(again == rule, "'%s' and its canonical '%s' differ",
               text.c_str(), canonical.c_str());
    FUZZ_CHECK(format_fault_rule(again) == canonical, "'%s' formats unstably",
               canonical.c_str());

    const size_t rest = newline ? size - text_len - 1 : 0;
    const std::vector<Step> steps =
        read_steps(newline ? newline + 1 : data, rest);
    const uint64_t seed = text.size() * 0x9e3779b97f4a7c15ULL;
    FaultInjector injector(seed), replay(seed);
    injector.add(rule, 0);
    replay.add(rule, 0);
    uint64_t matches = 0, fired = 0;
    for (const Step &s : steps) {
        const auto f = injector.check(s.site, s.check);
        const auto r = replay.check(s.site, s.check);
        FUZZ_CHECK(bool(f) == bool(r),
                   "same seed, different decision at check %" PRIu64, matches);
        const bool match = passes_filters(rule, s.site, s.check);
        FUZZ_CHECK(match || !f, "'%s' fired at a check it does not match",
                   canonical.c_str());
        if (!match) {
            continue;
        }
        matches++;
        fired += f ? 1 : 0;
        switch (rule.when) {
        case FaultWhen::Always:
            FUZZ_CHECK(f, "'%s' did not fire at match %" PRIu64,
                       canonical.c_str(), matches);
            break;
        case FaultWhen::Once:
            FUZZ_CHECK(bool(f) == (matches == 1), "'%s' at match %" PRIu64,
                       canonical.c_str(), matches);
            break;
        case FaultWhen::Nth:
            FUZZ_CHECK(bool(f) == (matches == rule.n), "'%s' at match %" PRIu64,
                       canonical.c_str(), matches);
            break;
        case FaultWhen::Every:
            FUZZ_CHECK(bool(f) == (matches % rule.n == 0),
                       "'%s' at match %" PRIu64, canonical.c_str(), matches);
            break;
        case FaultWhen::After:
            FUZZ_CHECK(!f || s.check.now_ns >= rule.after_ns,
                       "'%s' fired early", canonical.c_str());
            FUZZ_CHECK(fired <= 1, "'%s' fired twice", canonical.c_str());
            break;
        case FaultWhen::Probability: break;
        }
        if (f) {
            FUZZ_CHECK(f->action == rule.action && f->rule_id == 1 &&
                           f->sequence == fired,
                       "record of '%s' is wrong", canonical.c_str());
        }
    }
    return 0;
}
