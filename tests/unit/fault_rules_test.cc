// Fault rules: the rule language (valid rules, their canonical text, and
// every kind of bad rule refused with a message naming what is wrong), and
// the injector's matching and "when" semantics, deterministic by seed.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../../hw/ioguard/fault-injection/fault_rules.hh"

using namespace ioguard;

namespace
{

FaultRule parse_ok(const std::string &text)
{
    FaultRule rule;
    std::string error;
    EXPECT_TRUE(parse_fault_rule(text, rule, error)) << text << ": " << error;
    return rule;
}

std::string parse_error(const std::string &text)
{
    FaultRule rule;
    std::string error;
    EXPECT_FALSE(parse_fault_rule(text, rule, error)) << text;
    return error;
}

TEST(FaultRules, ParsesEveryFieldAndFormatsCanonically)
{
    FaultRule r = parse_ok("site=translate,requester=00:05.0,range=0x1000-1fff,"
                           "access=write,when=nth:3,action=fault");
    EXPECT_EQ(r.site, FaultSite::Translate);
    EXPECT_FALSE(r.any_requester);
    EXPECT_EQ(r.requester, 0x28);
    EXPECT_EQ(r.first, 0x1000u);
    EXPECT_EQ(r.last, 0x1fffu);
    EXPECT_FALSE(r.reads);
    EXPECT_TRUE(r.writes);
    EXPECT_EQ(r.when, FaultWhen::Nth);
    EXPECT_EQ(r.n, 3u);
    EXPECT_EQ(r.action, FaultAction::Fault);
    EXPECT_EQ(format_fault_rule(r),
              "site=translate,requester=00:05.0,range=0x1000-0x1fff,"
              "access=write,when=nth:3,action=fault");

    // Keys in any order; the defaults (any requester, any address, both
    // directions, always) are left out of the canonical text.
    r = parse_ok("action=drop,site=completion-wait");
    EXPECT_EQ(r.when, FaultWhen::Always);
    EXPECT_EQ(format_fault_rule(r), "site=completion-wait,action=drop");

    EXPECT_EQ(format_fault_rule(
                  parse_ok("site=command,opcode=1,when=once,action=stuck")),
              "site=command,opcode=completion-wait,when=once,action=stuck");
    EXPECT_EQ(
        format_fault_rule(parse_ok("site=command,opcode=15,action=fault")),
        "site=command,opcode=15,action=fault");
    EXPECT_EQ(format_fault_rule(
                  parse_ok("site=nic-dma,when=prob:0.010,action=dma-error")),
              "site=nic-dma,when=prob:0.01,action=dma-error");
    EXPECT_EQ(parse_ok("site=nic-dma,when=prob:1,action=dma-error").ppb,
              1000000000u);
    EXPECT_EQ(
        parse_ok("site=nic-dma,when=prob:0.000000001,action=dma-error").ppb,
        1u);
    EXPECT_EQ(
        format_fault_rule(parse_ok("site=completion-wait,when=after:1500ms,"
                                   "action=delay:2000us")),
        "site=completion-wait,when=after:1500ms,action=delay:2ms");
    r = parse_ok("site=nic-link,when=every:10,action=link-flap");
    EXPECT_EQ(r.delay_ns, 100000000u); // 100 ms unless said
    EXPECT_EQ(format_fault_rule(r),
              "site=nic-link,when=every:10,action=link-flap:100ms");
}

TEST(FaultRules, CanonicalTextParsesToTheSameRule)
{
    for (const char *text : {
             "site=translate,access=read,action=corrupt",
             "site=translate,range=0-0,when=after:1ns,action=stale",
             "site=page-walk,requester=ff:1f.7,action=fault",
             "site=dte-fetch,requester=01:00.0,when=every:2,action=fault",
             "site=event-log,when=nth:100,action=overflow",
             "site=interrupt,requester=00:14.0,action=drop",
             "site=nic-desc,range=0x10000-0x1ffff,action=dma-error",
             "site=nic-link,when=after:3s,action=link-flap:50ms",
         }) {
        const FaultRule r = parse_ok(text);
        EXPECT_EQ(parse_ok(format_fault_rule(r)), r) << text;
    }
}

TEST(FaultRules, BadRulesNameWhatIsWrong)
{
    EXPECT_EQ(parse_error(""), "a rule needs a site= and an action=");
    EXPECT_EQ(parse_error("site=translate"),
              "a rule needs a site= and an action=");
    EXPECT_EQ(parse_error("site=translate,action"),
              "'action' is not key=value");
    EXPECT_EQ(parse_error("site=translate,action=fault,"),
              "a ',' with nothing after it");
    EXPECT_EQ(parse_error("site=translate,site=command,action=fault"),
              "'site' given twice");
    EXPECT_EQ(parse_error("site=translate,colour=red,action=fault"),
              "unknown key 'colour' (keys: site, requester, range, access, "
              "opcode, when, "
              "action)");
    EXPECT_NE(parse_error("site=disk,action=fault")
                  .find("unknown site 'disk' (sites: translate"),
              std::string::npos);
    EXPECT_NE(parse_error("site=translate,requester=0:5.0,action=fault")
                  .find("'0:5.0' is not a requester ID"),
              std::string::npos);
    EXPECT_EQ(parse_error("site=translate,range=0x2000-0x1000,action=fault"),
              "address range '0x2000-0x1000' ends before it starts");
    EXPECT_NE(parse_error("site=translate,range=0x2000,action=fault")
                  .find("is not an address range"),
              std::string::npos);
    EXPECT_EQ(parse_error("site=translate,access=execute,action=fault"),
              "access 'execute' is neither read nor write");
    EXPECT_NE(parse_error("site=command,opcode=16,action=fault")
                  .find("unknown command '16'"),
              std::string::npos);
    for (const char *when :
         {"nth:0", "every:", "prob:0", "prob:1.5", "prob:0.1234567891",
          "prob:.5", "after:10", "after:0ms", "once:2", "sometimes"}) {
        EXPECT_EQ(parse_error(std::string("site=nic-dma,when=") + when +
                              ",action=dma-error")
                      .rfind(std::string("when '") + when + "' is none of", 0),
                  0u)
            << when;
    }
    EXPECT_NE(parse_error("site=completion-wait,action=delay")
                  .find("action 'delay' is none of"),
              std::string::npos);
    EXPECT_NE(
        parse_error("site=command,action=fault:1ms").find("action 'fault:1ms'"),
        std::string::npos);
    // Actions and filters a site does not have.
    EXPECT_EQ(parse_error("site=completion-wait,action=fault"),
              "site completion-wait cannot fault");
    EXPECT_EQ(parse_error("site=nic-dma,action=stuck"),
              "site nic-dma cannot stuck");
    EXPECT_EQ(parse_error("site=command,requester=00:05.0,action=fault"),
              "requester does not apply to site command");
    EXPECT_EQ(parse_error("site=translate,opcode=1,action=fault"),
              "opcode does not apply to site translate");
    EXPECT_EQ(parse_error("site=nic-link,range=0-1,action=link-flap"),
              "range does not apply to site nic-link");
    EXPECT_EQ(parse_error("site=notifier,requester=00:05.0,action=drop"),
              "requester does not apply to site notifier");
    EXPECT_EQ(parse_error("site=device-iotlb,action=fault"),
              "site device-iotlb cannot fault");
}

FaultCheck at(uint16_t requester, uint64_t address, bool write = false,
              uint64_t now = 0)
{
    FaultCheck c;
    c.requester = requester;
    c.address = address;
    c.write = write;
    c.now_ns = now;
    return c;
}

TEST(FaultInjector, FiltersDecideWhatMatches)
{
    FaultInjector inj;
    inj.add(
        parse_ok(
            "site=translate,requester=00:05.0,range=0x1000-0x1fff,access=write,"
            "action=fault"),
        0);
    EXPECT_FALSE(
        inj.check(FaultSite::Translate, at(0x28, 0x1000, false))); // a read
    EXPECT_FALSE(
        inj.check(FaultSite::Translate, at(0x29, 0x1000, true))); // 00:05.1
    EXPECT_FALSE(inj.check(FaultSite::Translate,
                           at(0x28, 0x2000, true))); // past the range
    EXPECT_FALSE(
        inj.check(FaultSite::PageWalk, at(0x28, 0x1000, true))); // another site
    auto f = inj.check(FaultSite::Translate, at(0x28, 0x1fff, true, 42));
    ASSERT_TRUE(f);
    EXPECT_EQ(f->rule_id, 1u);
    EXPECT_EQ(f->sequence, 1u);
    EXPECT_EQ(f->now_ns, 42u);
    EXPECT_EQ(f->action, FaultAction::Fault);
    EXPECT_EQ(f->hit.address, 0x1fffu);
    EXPECT_EQ(inj.fired().size(), 1u);

    FaultCheck cmd;
    cmd.opcode = 3;
    inj.add(parse_ok("site=command,opcode=invalidate-iommu-pages,action=stuck"),
            0);
    EXPECT_TRUE(inj.check(FaultSite::Command, cmd));
    cmd.opcode = 1;
    EXPECT_FALSE(inj.check(FaultSite::Command, cmd));
}

// The match numbers at which a rule fires, over `checks` matching checks.
std::vector<unsigned> firing(const std::string &rule, unsigned checks,
                             uint64_t seed = 0, uint64_t step_ns = 0)
{
    FaultInjector inj(seed);
    inj.add(parse_ok(rule), 0);
    std::vector<unsigned> out;
    for (unsigned i = 1; i <= checks; i++) {
        if (inj.check(FaultSite::NicDma, at(0, 0x1000, false, i * step_ns))) {
            out.push_back(i);
        }
    }
    return out;
}

TEST(FaultInjector, WhenSaysWhichMatchesFire)
{
    EXPECT_EQ(firing("site=nic-dma,action=dma-error", 3),
              (std::vector<unsigned>{1, 2, 3}));
    EXPECT_EQ(firing("site=nic-dma,when=once,action=dma-error", 5),
              (std::vector<unsigned>{1}));
    EXPECT_EQ(firing("site=nic-dma,when=nth:4,action=dma-error", 9),
              (std::vector<unsigned>{4}));
    EXPECT_EQ(firing("site=nic-dma,when=every:3,action=dma-error", 10),
              (std::vector<unsigned>{3, 6, 9}));
    // after: the first match at least 25 us after the rule was added, once
    // (checks every 10 us of virtual time).
    EXPECT_EQ(
        firing("site=nic-dma,when=after:25us,action=dma-error", 10, 0, 10000),
        (std::vector<unsigned>{3}));
}

TEST(FaultInjector, ProbabilityIsDeterministicBySeed)
{
    const std::string rule = "site=nic-dma,when=prob:0.25,action=dma-error";
    const auto a = firing(rule, 4000, 7), b = firing(rule, 4000, 7),
               c = firing(rule, 4000, 8);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
    EXPECT_GT(a.size(), 850u); // 1000 expected: well within 5 sigma (27)
    EXPECT_LT(a.size(), 1150u);
    EXPECT_EQ(firing("site=nic-dma,when=prob:1,action=dma-error", 50).size(),
              50u);
}

TEST(FaultInjector, EarliestRuleWinsAndEveryRuleCountsItsMatches)
{
    FaultInjector inj;
    const uint32_t always =
        inj.add(parse_ok("site=nic-dma,range=0-0xfff,action=dma-error"), 0);
    const uint32_t nth =
        inj.add(parse_ok("site=nic-dma,when=nth:2,action=dma-error"), 0);
    EXPECT_EQ(inj.check(FaultSite::NicDma, at(0, 0x10))->rule_id, always);
    // The second rule's 2nd match, shadowed by the first rule: it is spent.
    EXPECT_EQ(inj.check(FaultSite::NicDma, at(0, 0x10))->rule_id, always);
    EXPECT_FALSE(inj.check(FaultSite::NicDma, at(0, 0x2000)));
    EXPECT_TRUE(inj.remove(always));
    EXPECT_FALSE(inj.remove(always));
    EXPECT_FALSE(inj.check(FaultSite::NicDma, at(0, 0x10)));
    ASSERT_EQ(inj.rules().size(), 1u);
    EXPECT_EQ(inj.rules()[0].id, nth);
    EXPECT_EQ(inj.rules()[0].matches, 4u);
    EXPECT_EQ(inj.rules()[0].fired, 0u);
    const auto fired = inj.fired();
    ASSERT_EQ(fired.size(), 2u);
    EXPECT_EQ(fired[1].sequence, 2u);
}

TEST(FaultInjector, KeepsTheLatestRecords)
{
    FaultInjector inj;
    inj.add(parse_ok("site=event-log,action=drop"), 0);
    for (unsigned i = 0; i < FaultInjector::kMaxRecords + 10; i++) {
        inj.check(FaultSite::EventLog, at(0, 0));
    }
    const auto fired = inj.fired();
    ASSERT_EQ(fired.size(), FaultInjector::kMaxRecords);
    EXPECT_EQ(fired.front().sequence, 11u);
    EXPECT_EQ(inj.fired_dropped(), 10u);
}

} // namespace
