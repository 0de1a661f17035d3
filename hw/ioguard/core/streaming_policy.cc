#include "streaming_policy.hh"

#include "text_parse.hh"

#include <algorithm>
#include <cstdlib>

namespace ioguard {

namespace {

bool same(const IoguardStreamingRule &a, const IoguardStreamingRule &b)
{
    return a.devid == b.devid && a.first == b.first && a.last == b.last;
}

bool parse_rule(std::string_view s, IoguardStreamingRule &rule,
                std::string &error)
{
    const size_t at = s.find('@');
    if (!parse_requester(s.substr(0, at), rule.devid)) {
        error = message("'", s.substr(0, at),
                        "' is not a requester ID of the form bus:dev.fn "
                        "(e.g. 00:05.0)");
        return false;
    }
    rule.first = 0;
    rule.last = ~uint64_t{0};
    if (at == std::string_view::npos) {
        return true;
    }
    const std::string_view range = s.substr(at + 1);
    const size_t dash = range.find('-');
    if (dash == std::string_view::npos ||
        !parse_hex(range.substr(0, dash), 16, rule.first) ||
        !parse_hex(range.substr(dash + 1), 16, rule.last)) {
        error = message("'", range,
                        "' is not an IOVA range of the form first-last in hex");
        return false;
    }
    if (rule.first > rule.last) {
        error = message("IOVA range '", range, "' ends before it starts");
        return false;
    }
    return true;
}

} // namespace

bool parse_streaming_rules(std::string_view text,
                           std::vector<IoguardStreamingRule> &rules,
                           std::string &error)
{
    rules.clear();
    while (!text.empty()) {
        const size_t plus = text.find('+');
        const std::string_view part = text.substr(0, plus);
        IoguardStreamingRule rule{};
        if (!parse_rule(part, rule, error)) {
            return false;
        }
        if (rules.size() == IOGUARD_STREAMING_RULES_MAX) {
            error = message("more than ",
                            std::to_string(IOGUARD_STREAMING_RULES_MAX),
                            " rules");
            return false;
        }
        rules.push_back(rule);
        if (plus == std::string_view::npos) {
            break;
        }
        text.remove_prefix(plus + 1);
        if (text.empty()) {
            error = "a '+' with no rule after it";
            return false;
        }
    }
    return true;
}

bool StreamingPolicy::add(const IoguardStreamingRule &rule)
{
    std::lock_guard<std::mutex> guard(lock_);
    if (rule.first > rule.last) {
        return false;
    }
    if (std::any_of(rules_.begin(), rules_.end(),
                    [&](const auto &r) { return same(r, rule); })) {
        return true;
    }
    if (rules_.size() >= IOGUARD_STREAMING_RULES_MAX) {
        return false;
    }
    rules_.push_back(rule);
    update_rules_of(rule.devid);
    return true;
}

bool StreamingPolicy::remove(const IoguardStreamingRule &rule)
{
    std::lock_guard<std::mutex> guard(lock_);
    auto it = std::find_if(rules_.begin(), rules_.end(),
                           [&](const auto &r) { return same(r, rule); });
    if (it == rules_.end()) {
        return false;
    }
    rules_.erase(it);
    update_rules_of(rule.devid);
    return true;
}

// With lock_ held.
void StreamingPolicy::update_rules_of(uint16_t devid)
{
    uint8_t n = 0;
    bool whole = false;
    for (const auto &r : rules_) {
        if (r.devid == devid) {
            n++;
            whole = whole || (r.first == 0 && r.last == ~uint64_t{0});
        }
    }
    rules_of_[devid].store(n | (whole ? kWholeDevice : 0),
                           std::memory_order_relaxed);
}

std::vector<IoguardStreamingRule> StreamingPolicy::rules() const
{
    std::lock_guard<std::mutex> guard(lock_);
    return rules_;
}

bool StreamingPolicy::matches_slow(uint16_t devid, uint64_t iova) const
{
    std::lock_guard<std::mutex> guard(lock_);
    return std::any_of(rules_.begin(), rules_.end(), [&](const auto &r) {
        return r.devid == devid && r.first <= iova && iova <= r.last;
    });
}

} // namespace ioguard
