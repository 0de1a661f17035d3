#include "fault_rules.hh"

#include <algorithm>
#include <array>
#include <cstdio>

#include "snapshot.hh"
#include "text_parse.hh"

namespace ioguard
{

namespace
{

struct Name {
    const char *text;
    uint8_t value;
};

constexpr std::array kSites = {
    Name{"translate", uint8_t(FaultSite::Translate)},
    Name{"page-walk", uint8_t(FaultSite::PageWalk)},
    Name{"dte-fetch", uint8_t(FaultSite::DteFetch)},
    Name{"command", uint8_t(FaultSite::Command)},
    Name{"completion-wait", uint8_t(FaultSite::CompletionWait)},
    Name{"event-log", uint8_t(FaultSite::EventLog)},
    Name{"interrupt", uint8_t(FaultSite::Interrupt)},
    Name{"nic-desc", uint8_t(FaultSite::NicDesc)},
    Name{"nic-dma", uint8_t(FaultSite::NicDma)},
    Name{"nic-link", uint8_t(FaultSite::NicLink)},
    Name{"notifier", uint8_t(FaultSite::Notifier)},
    Name{"device-iotlb", uint8_t(FaultSite::DeviceIotlb)},
    Name{"page-request", uint8_t(FaultSite::PageRequest)},
    Name{"page-response", uint8_t(FaultSite::PageResponse)},
};

constexpr std::array kActions = {
    Name{"fault", uint8_t(FaultAction::Fault)},
    Name{"drop", uint8_t(FaultAction::Drop)},
    Name{"delay", uint8_t(FaultAction::Delay)},
    Name{"corrupt", uint8_t(FaultAction::Corrupt)},
    Name{"stale", uint8_t(FaultAction::Stale)},
    Name{"overflow", uint8_t(FaultAction::Overflow)},
    Name{"stuck", uint8_t(FaultAction::Stuck)},
    Name{"dma-error", uint8_t(FaultAction::DmaError)},
    Name{"link-flap", uint8_t(FaultAction::LinkFlap)},
};

// Command opcodes by the names of the AMD IOMMU spec's commands.
constexpr std::array kOpcodes = {
    Name{"completion-wait", 0x1},
    Name{"invalidate-devtab-entry", 0x2},
    Name{"invalidate-iommu-pages", 0x3},
    Name{"invalidate-iotlb-pages", 0x4},
    Name{"invalidate-interrupt-table", 0x5},
    Name{"prefetch-iommu-pages", 0x6},
    Name{"complete-ppr-request", 0x7},
    Name{"invalidate-iommu-all", 0x8},
};

constexpr uint32_t bit(FaultSite s)
{
    return 1u << unsigned(s);
}
constexpr uint32_t bit(FaultAction a)
{
    return 1u << unsigned(a);
}

// What each site can do, and which filters mean something there.
struct SiteRules {
    uint32_t actions;
    bool requester, range, access, opcode;
};

SiteRules site_rules(FaultSite site)
{
    using A = FaultAction;
    switch (site) {
    case FaultSite::Translate:
        return {bit(A::Fault) | bit(A::Corrupt) | bit(A::Stale), true, true,
                true, false};
    case FaultSite::PageWalk: return {bit(A::Fault), true, true, false, false};
    case FaultSite::DteFetch: return {bit(A::Fault), true, false, false, false};
    case FaultSite::Command:
        return {bit(A::Fault) | bit(A::Stuck), false, false, false, true};
    case FaultSite::CompletionWait:
        return {bit(A::Drop) | bit(A::Delay), false, false, false, false};
    case FaultSite::EventLog:
        return {bit(A::Drop) | bit(A::Overflow), false, false, false, false};
    case FaultSite::Interrupt: return {bit(A::Drop), true, false, false, false};
    case FaultSite::NicDesc:
        return {bit(A::DmaError), false, true, false, false};
    case FaultSite::NicDma: return {bit(A::DmaError), false, true, true, false};
    case FaultSite::NicLink:
        return {bit(A::LinkFlap), false, false, false, false};
    case FaultSite::Notifier:
        return {bit(A::Drop) | bit(A::Delay), false, true, false, false};
    case FaultSite::DeviceIotlb:
        return {bit(A::Drop) | bit(A::Delay), true, true, false, false};
    case FaultSite::PageRequest:
        return {bit(A::Drop) | bit(A::Overflow) | bit(A::Fault), true, true,
                true, false};
    case FaultSite::PageResponse:
        return {bit(A::Drop) | bit(A::Delay) | bit(A::Fault), true, false,
                false, false};
    }
    return {};
}

template <size_t N>
bool lookup(const std::array<Name, N> &names, std::string_view text,
            uint8_t &value)
{
    for (const Name &n : names) {
        if (text == n.text) {
            value = n.value;
            return true;
        }
    }
    return false;
}

template <size_t N>
const char *name_of(const std::array<Name, N> &names, uint8_t value)
{
    for (const Name &n : names) {
        if (n.value == value) {
            return n.text;
        }
    }
    return "?";
}

template <size_t N> std::string list(const std::array<Name, N> &names)
{
    std::string out;
    for (const Name &n : names) {
        out.append(out.empty() ? "" : ", ").append(n.text);
    }
    return out;
}

// "250ms": a positive number of ns, us, ms or s.
bool parse_duration(std::string_view s, uint64_t &ns)
{
    static const struct {
        const char *unit;
        uint64_t ns;
    } units[] = {
        {"ns", 1},
        {"us", 1000},
        {"ms", 1000000},
        {"s", 1000000000},
    };
    for (const auto &u : units) {
        const std::string_view unit(u.unit);
        if (s.size() > unit.size() &&
            s.substr(s.size() - unit.size()) == unit) {
            const std::string_view number = s.substr(0, s.size() - unit.size());
            uint64_t v;
            if (!number.empty() && number.back() >= '0' &&
                number.back() <= '9' && parse_decimal(number, v) && v > 0 &&
                v <= UINT64_MAX / u.ns) {
                ns = v * u.ns;
                return true;
            }
        }
    }
    return false;
}

std::string format_duration(uint64_t ns)
{
    if (ns % 1000000000 == 0) {
        return std::to_string(ns / 1000000000) + "s";
    } else if (ns % 1000000 == 0) {
        return std::to_string(ns / 1000000) + "ms";
    } else if (ns % 1000 == 0) {
        return std::to_string(ns / 1000) + "us";
    }
    return std::to_string(ns) + "ns";
}

// "0.25", "1", "1.0": a probability above 0 and at most 1, to 9 decimals,
// in parts per billion (integers, so that every host draws the same).
bool parse_probability(std::string_view s, uint32_t &ppb)
{
    const size_t dot = s.find('.');
    const std::string_view whole = s.substr(0, dot);
    std::string_view fraction =
        dot == std::string_view::npos ? "" : s.substr(dot + 1);
    if ((whole != "0" && whole != "1") ||
        (dot != std::string_view::npos && fraction.empty()) ||
        fraction.size() > 9) {
        return false;
    }
    uint64_t f = 0;
    if (!fraction.empty() && !parse_decimal(fraction, f)) {
        return false;
    }
    for (size_t i = fraction.size(); i < 9; i++) {
        f *= 10;
    }
    const uint64_t v = (whole == "1" ? 1000000000 : 0) + f;
    if (v == 0 || v > 1000000000) {
        return false;
    }
    ppb = uint32_t(v);
    return true;
}

std::string format_probability(uint32_t ppb)
{
    if (ppb == 1000000000) {
        return "1";
    }
    std::string digits = std::to_string(ppb);
    digits.insert(0, 9 - digits.size(), '0');
    while (digits.back() == '0') {
        digits.pop_back();
    }
    return digits.insert(0, "0.");
}

std::string hex(uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    std::string out;
    do {
        out.insert(out.begin(), digits[v & 0xf]);
        v >>= 4;
    } while (v);
    return out.insert(0, "0x");
}

bool parse_when(std::string_view s, FaultRule &rule)
{
    const size_t colon = s.find(':');
    const std::string_view kind = s.substr(0, colon);
    const std::string_view arg =
        colon == std::string_view::npos ? "" : s.substr(colon + 1);
    const bool has_arg = colon != std::string_view::npos;
    if (kind == "always" && !has_arg) {
        rule.when = FaultWhen::Always;
    } else if (kind == "once" && !has_arg) {
        rule.when = FaultWhen::Once;
    } else if ((kind == "nth" || kind == "every") &&
               parse_decimal(arg, rule.n) && rule.n > 0) {
        rule.when = kind == "nth" ? FaultWhen::Nth : FaultWhen::Every;
    } else if (kind == "prob" && parse_probability(arg, rule.ppb)) {
        rule.when = FaultWhen::Probability;
    } else if (kind == "after" && parse_duration(arg, rule.after_ns)) {
        rule.when = FaultWhen::After;
    } else {
        return false;
    }
    return true;
}

bool parse_action(std::string_view s, FaultRule &rule)
{
    const size_t colon = s.find(':');
    uint8_t value;
    if (!lookup(kActions, s.substr(0, colon), value)) {
        return false;
    }
    rule.action = FaultAction(value);
    const bool timed = rule.action == FaultAction::Delay ||
                       rule.action == FaultAction::LinkFlap;
    if (colon == std::string_view::npos) {
        // A link flap lasts 100 ms unless the rule says; a delay must say.
        rule.delay_ns = rule.action == FaultAction::LinkFlap ? 100000000 : 0;
        return rule.action != FaultAction::Delay;
    }
    return timed && parse_duration(s.substr(colon + 1), rule.delay_ns);
}

bool parse_key(std::string_view key, std::string_view value, FaultRule &rule,
               std::string &error)
{
    uint8_t v;
    if (key == "site") {
        if (!lookup(kSites, value, v)) {
            error = message("unknown site '", value, "' (sites: ") +
                    list(kSites) + ")";
            return false;
        }
        rule.site = FaultSite(v);
    } else if (key == "requester") {
        if (!parse_requester(value, rule.requester)) {
            error = message("'", value,
                            "' is not a requester ID of the form bus:dev.fn "
                            "(e.g. 00:05.0)");
            return false;
        }
        rule.any_requester = false;
    } else if (key == "range") {
        const size_t dash = value.find('-');
        if (dash == std::string_view::npos ||
            !parse_hex(value.substr(0, dash), 16, rule.first) ||
            !parse_hex(value.substr(dash + 1), 16, rule.last)) {
            error = message(
                "'", value,
                "' is not an address range of the form first-last in hex");
            return false;
        }
        if (rule.first > rule.last) {
            error =
                message("address range '", value, "' ends before it starts");
            return false;
        }
    } else if (key == "access") {
        if (value != "read" && value != "write") {
            error = message("access '", value, "' is neither read nor write");
            return false;
        }
        rule.reads = value == "read";
        rule.writes = value == "write";
    } else if (key == "opcode") {
        uint64_t number;
        if (lookup(kOpcodes, value, v)) {
            rule.opcode = v;
        } else if (parse_decimal(value, number) && number < 16) {
            rule.opcode = int(number);
        } else {
            error = message("unknown command '", value,
                            "' (a number below 16 or one of: ") +
                    list(kOpcodes) + ")";
            return false;
        }
    } else if (key == "when") {
        if (!parse_when(value, rule)) {
            error = message("when '", value,
                            "' is none of always, once, nth:N, every:N, "
                            "prob:P (0 < P <= 1), after:TIME (e.g. 250ms)");
            return false;
        }
    } else if (key == "action") {
        if (!parse_action(value, rule)) {
            error = message("action '", value, "' is none of ") +
                    list(kActions) +
                    " (delay:TIME, link-flap[:TIME], TIME e.g. 10ms)";
            return false;
        }
    } else {
        error = message(
            "unknown key '", key,
            "' (keys: site, requester, range, access, opcode, when, action)");
        return false;
    }
    return true;
}

} // namespace

const char *fault_site_name(FaultSite site)
{
    return name_of(kSites, uint8_t(site));
}
const char *fault_action_name(FaultAction action)
{
    return name_of(kActions, uint8_t(action));
}

bool parse_fault_rule(std::string_view text, FaultRule &rule,
                      std::string &error)
{
    rule = FaultRule{};
    std::vector<std::string_view> seen;
    while (!text.empty()) {
        const size_t comma = text.find(',');
        const std::string_view part = text.substr(0, comma);
        const size_t eq = part.find('=');
        if (eq == std::string_view::npos) {
            error = message("'", part, "' is not key=value");
            return false;
        }
        const std::string_view key = part.substr(0, eq);
        if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
            error = message("'", key, "' given twice");
            return false;
        }
        seen.push_back(key);
        if (!parse_key(key, part.substr(eq + 1), rule, error)) {
            return false;
        }
        text.remove_prefix(comma == std::string_view::npos ? text.size()
                                                           : comma + 1);
        if (comma != std::string_view::npos && text.empty()) {
            error = "a ',' with nothing after it";
            return false;
        }
    }
    auto given = [&](std::string_view key) {
        return std::find(seen.begin(), seen.end(), key) != seen.end();
    };
    if (!given("site") || !given("action")) {
        error = "a rule needs a site= and an action=";
        return false;
    }
    const SiteRules allowed = site_rules(rule.site);
    const char *site = fault_site_name(rule.site);
    if (!(allowed.actions & bit(rule.action))) {
        error =
            message("site ", site, " cannot ") + fault_action_name(rule.action);
        return false;
    }
    const struct {
        const char *key;
        bool applies;
    } filters[] = {
        {"requester", allowed.requester},
        {"range", allowed.range},
        {"access", allowed.access},
        {"opcode", allowed.opcode},
    };
    for (const auto &f : filters) {
        if (given(f.key) && !f.applies) {
            error = message(f.key, "", " does not apply to site ") + site;
            return false;
        }
    }
    return true;
}

std::string format_fault_rule(const FaultRule &r)
{
    std::string out = "site=";
    out += fault_site_name(r.site);
    if (!r.any_requester) {
        char bdf[8];
        snprintf(bdf, sizeof(bdf), "%02x:%02x.%x", r.requester >> 8,
                 (r.requester >> 3) & 0x1f, r.requester & 7);
        out += ",requester=";
        out += bdf;
    }
    if (r.first != 0 || r.last != ~uint64_t{0}) {
        out.append(",range=")
            .append(hex(r.first))
            .append("-")
            .append(hex(r.last));
    }
    if (!(r.reads && r.writes)) {
        out += r.reads ? ",access=read" : ",access=write";
    }
    if (r.opcode >= 0) {
        const char *name = name_of(kOpcodes, uint8_t(r.opcode));
        out += ",opcode=";
        out += name[0] != '?' ? name : std::to_string(r.opcode).c_str();
    }
    switch (r.when) {
    case FaultWhen::Always: break;
    case FaultWhen::Once: out += ",when=once"; break;
    case FaultWhen::Nth:
        out.append(",when=nth:").append(std::to_string(r.n));
        break;
    case FaultWhen::Every:
        out.append(",when=every:").append(std::to_string(r.n));
        break;
    case FaultWhen::Probability:
        out.append(",when=prob:").append(format_probability(r.ppb));
        break;
    case FaultWhen::After:
        out.append(",when=after:").append(format_duration(r.after_ns));
        break;
    }
    out += ",action=";
    out += fault_action_name(r.action);
    if (r.action == FaultAction::Delay || r.action == FaultAction::LinkFlap) {
        out.append(":").append(format_duration(r.delay_ns));
    }
    return out;
}

// FaultInjector

namespace
{

uint64_t splitmix64(uint64_t &state)
{
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

bool matches(const FaultRule &r, const FaultCheck &hit)
{
    return (r.any_requester || r.requester == hit.requester) &&
           r.first <= hit.address && hit.address <= r.last &&
           (hit.write ? r.writes : r.reads) &&
           (r.opcode < 0 || r.opcode == hit.opcode);
}

} // namespace

uint32_t FaultInjector::add(const FaultRule &rule, uint64_t now_ns)
{
    std::lock_guard<std::mutex> guard(lock_);
    const uint32_t id = next_id_++;
    // Each rule draws from its own generator, seeded by the injector's seed
    // and its id, so that adding a rule does not change another's draws.
    rules_.push_back(
        Active{id, rule, 0, 0, now_ns, seed_ ^ (uint64_t(id) << 32 | id)});
    update_sites();
    return id;
}

bool FaultInjector::remove(uint32_t id)
{
    std::lock_guard<std::mutex> guard(lock_);
    auto it = std::find_if(rules_.begin(), rules_.end(),
                           [&](const Active &a) { return a.id == id; });
    if (it == rules_.end()) {
        return false;
    }
    rules_.erase(it);
    update_sites();
    return true;
}

// With lock_ held.
void FaultInjector::update_sites()
{
    uint32_t sites = 0;
    for (const Active &a : rules_) {
        sites |= bit(a.rule.site);
    }
    sites_.store(sites, std::memory_order_relaxed);
}

std::vector<ActiveRule> FaultInjector::rules() const
{
    std::lock_guard<std::mutex> guard(lock_);
    std::vector<ActiveRule> out;
    for (const Active &a : rules_) {
        out.push_back(ActiveRule{a.id, a.rule, a.matches, a.fired});
    }
    return out;
}

void FaultInjector::set_listener(
    std::function<void(const FiredFault &)> listener)
{
    std::lock_guard<std::mutex> guard(lock_);
    listener_ = std::move(listener);
}

// With lock_ held, for a rule that matched (a.matches counts it).
bool FaultInjector::fires(Active &a, uint64_t now_ns)
{
    switch (a.rule.when) {
    case FaultWhen::Always: return true;
    case FaultWhen::Once: return !a.spent;
    case FaultWhen::Nth: return a.matches == a.rule.n;
    case FaultWhen::Every: return a.matches % a.rule.n == 0;
    case FaultWhen::Probability:
        return splitmix64(a.random) % 1000000000 < a.rule.ppb;
    case FaultWhen::After:
        return !a.spent && now_ns >= a.added_ns &&
               now_ns - a.added_ns >= a.rule.after_ns;
    }
    return false;
}

std::optional<FiredFault> FaultInjector::check(FaultSite site,
                                               const FaultCheck &hit)
{
    if (!(sites_.load(std::memory_order_relaxed) & bit(site))) {
        return std::nullopt;
    }
    std::unique_lock<std::mutex> guard(lock_);
    std::optional<FiredFault> out;
    // Every matching rule counts the match and draws, fired or not, so that
    // a rule's decisions depend only on the checks it matched.
    for (Active &a : rules_) {
        if (a.rule.site != site || !matches(a.rule, hit)) {
            continue;
        }
        a.matches++;
        if (fires(a, hit.now_ns) && !out) {
            a.spent = true;
            a.fired++;
            out = FiredFault{++sequence_, a.id,          hit.now_ns,
                             site,        a.rule.action, a.rule.delay_ns,
                             hit};
        }
    }
    if (out) {
        if (fired_.size() == kMaxRecords) {
            fired_.erase(fired_.begin());
            fired_dropped_++;
        }
        fired_.push_back(*out);
        if (listener_) {
            const auto listener = listener_;
            guard.unlock();
            listener(*out);
        }
    }
    return out;
}

std::vector<FiredFault> FaultInjector::fired() const
{
    std::lock_guard<std::mutex> guard(lock_);
    return fired_;
}

uint64_t FaultInjector::fired_dropped() const
{
    std::lock_guard<std::mutex> guard(lock_);
    return fired_dropped_;
}

// Snapshots

namespace
{

constexpr uint64_t kInjectorStateVersion = 1;

void save_fired(StateWriter &out, const FiredFault &f)
{
    for (uint64_t v : {f.sequence, uint64_t(f.rule_id), f.now_ns,
                       uint64_t(f.site), uint64_t(f.action), f.delay_ns,
                       uint64_t(f.hit.requester), f.hit.address,
                       uint64_t(f.hit.write), uint64_t(int64_t(f.hit.opcode)),
                       f.hit.now_ns}) {
        out.put(v);
    }
}

bool load_fired(StateReader &in, FiredFault &f)
{
    uint64_t v[11];
    for (uint64_t &w : v) {
        if (!in.get(w)) {
            return false;
        }
    }
    if (v[3] > uint64_t(FaultSite::PageResponse) ||
        v[4] > uint64_t(FaultAction::LinkFlap) || v[6] > 0xffff) {
        return false;
    }
    f = FiredFault{v[0],
                   uint32_t(v[1]),
                   v[2],
                   FaultSite(v[3]),
                   FaultAction(v[4]),
                   v[5],
                   {uint16_t(v[6]), v[7], v[8] != 0, int(int64_t(v[9])),
                    v[10]}};
    return true;
}

// A rule's canonical text, as words of 8 bytes (the length first).
void save_text(StateWriter &out, const std::string &text)
{
    out.put(text.size());
    for (size_t i = 0; i < text.size(); i += 8) {
        uint64_t w = 0;
        for (size_t k = 0; k < 8 && i + k < text.size(); k++) {
            w |= uint64_t(uint8_t(text[i + k])) << (8 * k);
        }
        out.put(w);
    }
}

bool load_text(StateReader &in, std::string &text)
{
    uint64_t len;
    if (!in.get(len) || len > 4096) {
        return false;
    }
    text.clear();
    for (uint64_t i = 0; i < len; i += 8) {
        uint64_t w;
        if (!in.get(w)) {
            return false;
        }
        for (uint64_t k = 0; k < 8 && i + k < len; k++) {
            text.push_back(char(w >> (8 * k)));
        }
    }
    return true;
}

} // namespace

void FaultInjector::save(StateWriter &out) const
{
    std::lock_guard<std::mutex> guard(lock_);
    out.put(kInjectorStateVersion);
    out.put(seed_);
    out.put(next_id_);
    out.put(sequence_);
    out.put(fired_dropped_);
    out.put(rules_.size());
    for (const Active &a : rules_) {
        out.put(a.id);
        save_text(out, format_fault_rule(a.rule));
        out.put(a.matches);
        out.put(a.fired);
        out.put(a.added_ns);
        out.put(a.random);
        out.put(a.spent);
    }
    out.put(fired_.size());
    for (const FiredFault &f : fired_) {
        save_fired(out, f);
    }
}

bool FaultInjector::load(StateReader &in)
{
    uint64_t version, seed, next_id, sequence, dropped, n;
    if (!in.get(version) || version != kInjectorStateVersion ||
        !in.get(seed) || seed != seed_ || !in.get(next_id) ||
        next_id > UINT32_MAX || !in.get(sequence) || !in.get(dropped) ||
        !in.get_count(n, 7, 1024)) {
        return false;
    }
    std::vector<Active> rules;
    for (uint64_t i = 0; i < n; i++) {
        Active a{};
        uint64_t id, spent;
        std::string text, error;
        if (!in.get(id) || id == 0 || id >= next_id ||
            !load_text(in, text) || !parse_fault_rule(text, a.rule, error) ||
            !in.get(a.matches) || !in.get(a.fired) || !in.get(a.added_ns) ||
            !in.get(a.random) || !in.get(spent)) {
            return false;
        }
        a.id = uint32_t(id);
        a.spent = spent != 0;
        rules.push_back(a);
    }
    std::vector<FiredFault> fired;
    if (!in.get_count(n, 11, kMaxRecords)) {
        return false;
    }
    for (uint64_t i = 0; i < n; i++) {
        FiredFault f;
        if (!load_fired(in, f)) {
            return false;
        }
        fired.push_back(f);
    }
    std::lock_guard<std::mutex> guard(lock_);
    rules_ = std::move(rules);
    fired_ = std::move(fired);
    next_id_ = uint32_t(next_id);
    sequence_ = sequence;
    fired_dropped_ = dropped;
    update_sites();
    return true;
}

} // namespace ioguard
