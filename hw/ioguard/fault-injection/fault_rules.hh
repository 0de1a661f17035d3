// Fault injection rules, in the spirit of QEMU's blkdebug: where a rule
// fires (a site, narrowed by filters), when (always, once, the Nth match,
// every Nth, with a seeded probability, after a virtual-time delay) and
// what happens (an action the site knows how to carry out). One rule is one
// line of text:
//
//   site=translate,requester=00:05.0,range=0x1000-0x1fff,access=write,when=nth:3,action=fault
//   site=completion-wait,when=once,action=drop
//   site=nic-dma,when=prob:0.01,action=dma-error
//
// FaultInjector keeps the rules and decides, at each point where a site
// could fault, whether one fires; with the same seed, rules and sequence
// of checks it decides the same, and it records every fault it fired.
// (The devices carry the actions out; this file only decides.)
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ioguard {

class StateReader;
class StateWriter;

enum class FaultSite : uint8_t {
    Translate,          // a DMA's translation (requester, IOVA, access)
    PageWalk,           // a page-table read during a walk
    DteFetch,           // a device-table entry read
    Command,            // a command, by opcode
    CompletionWait,     // COMPLETION_WAIT's store and interrupt
    EventLog,           // an event-log write
    Interrupt,          // an interrupt through remapping
    NicDesc,            // ioguard-nic's descriptor fetch
    NicDma,             // ioguard-nic's data DMA
    NicLink,            // ioguard-nic's link
    Notifier,           // what the host's notifier users hear of an
                        // IOMMU page invalidation (first IOVA)
    DeviceIotlb,        // INVALIDATE_IOTLB_PAGES reaching the device's
                        // own translation cache (requester, first IOVA)
    PageRequest,        // a device's page request reaching the PPR log
                        // (requester, page, access)
    PageResponse,       // COMPLETE_PPR_REQUEST's answer reaching the
                        // device (requester)
};

enum class FaultWhen : uint8_t {
    Always,
    Once,               // the first match only
    Nth,                // the Nth match only
    Every,              // every Nth match
    Probability,        // each match with probability ppb / 1e9
    After,              // first match after_ns or more after the rule came
};

enum class FaultAction : uint8_t {
    Fault,              // the site's architected fault and event
    Drop,               // the store, interrupt or event never happens
    Delay,              // it happens delay_ns later
    Corrupt,            // a translation to the wrong page
    Stale,              // a translation the guest has since invalidated
    Overflow,           // the event log reports overflow
    Stuck,              // the command buffer stops advancing
    DmaError,           // the device's DMA fails
    LinkFlap,           // the link goes down, and up delay_ns later
};

struct FaultRule {
    FaultSite site = FaultSite::Translate;
    // Filters: a check matches when it passes every one.
    bool any_requester = true;
    uint16_t requester = 0;
    uint64_t first = 0, last = ~uint64_t{0};    // address (IOVA) range
    bool reads = true, writes = true;
    int opcode = -1;                            // command opcode; -1: any
    FaultWhen when = FaultWhen::Always;
    uint64_t n = 0;                             // Nth, Every
    uint32_t ppb = 0;                           // Probability, parts per 1e9
    uint64_t after_ns = 0;                      // After
    FaultAction action = FaultAction::Fault;
    uint64_t delay_ns = 0;                      // Delay, LinkFlap

    bool operator==(const FaultRule &) const = default;
};

// One rule's text into rule. False, with error naming the bad part.
bool parse_fault_rule(std::string_view text, FaultRule &rule,
                      std::string &error);
// The canonical text of a rule: parse_fault_rule() gives the rule back.
std::string format_fault_rule(const FaultRule &rule);

const char *fault_site_name(FaultSite site);
const char *fault_action_name(FaultAction action);

// What a check is about; which fields count depends on the site.
struct FaultCheck {
    uint16_t requester = 0;
    uint64_t address = 0;
    bool write = false;
    int opcode = -1;
    uint64_t now_ns = 0;        // virtual time
};

// A fault that fired: the record QMP and trace events show.
struct FiredFault {
    uint64_t sequence;          // 1, 2, ... in firing order
    uint32_t rule_id;
    uint64_t now_ns;
    FaultSite site;
    FaultAction action;
    uint64_t delay_ns;
    FaultCheck hit;
};

// A rule as the injector holds it.
struct ActiveRule {
    uint32_t id;
    FaultRule rule;
    uint64_t matches;           // checks it matched
    uint64_t fired;             // faults it fired
};

class FaultInjector {
public:
    explicit FaultInjector(uint64_t seed = 0) : seed_(seed) {}

    uint64_t seed() const { return seed_; }

    // Rules get ids 1, 2, ... in the order they are added; now_ns starts
    // an After rule's delay.
    uint32_t add(const FaultRule &rule, uint64_t now_ns);
    bool remove(uint32_t id);
    std::vector<ActiveRule> rules() const;

    // Whether any rule names site: the sites' fast path, without a lock.
    bool armed(FaultSite site) const
    {
        return sites_.load(std::memory_order_relaxed) & (1u << unsigned(site));
    }

    // Whether a rule fires at this point of site: the first rule (by id)
    // that matches and whose "when" says so. Every matching rule counts
    // the match. Cheap when no rule names the site.
    std::optional<FiredFault> check(FaultSite site, const FaultCheck &hit);

    // The last kMaxRecords faults fired, oldest first, and how many older
    // ones were dropped.
    std::vector<FiredFault> fired() const;
    uint64_t fired_dropped() const;
    static constexpr size_t kMaxRecords = 256;

    // Snapshots: the rules with their counts and generators, and the
    // records, so that a restored run fires what the saved one would have.
    // load() replaces everything; false (changing nothing) if the state is
    // malformed or was saved with another seed.
    void save(StateWriter &out) const;
    bool load(StateReader &in);

    // Called with each fault fired (for tracing), outside the injector's
    // lock, on the thread that made the check.
    void set_listener(std::function<void(const FiredFault &)> listener);

private:
    struct Active {
        uint32_t id;
        FaultRule rule;
        uint64_t matches = 0;
        uint64_t fired = 0;
        uint64_t added_ns;
        uint64_t random;        // the rule's own generator state
        bool spent = false;     // Once, Nth and After fire one time
    };
    bool fires(Active &a, uint64_t now_ns);
    void update_sites();

    const uint64_t seed_;
    mutable std::mutex lock_;
    std::vector<Active> rules_;
    uint32_t next_id_ = 1;
    std::atomic<uint32_t> sites_{0};    // bit per FaultSite that has a rule
    std::vector<FiredFault> fired_;
    uint64_t fired_dropped_ = 0;
    uint64_t sequence_ = 0;
    std::function<void(const FiredFault &)> listener_;
};

} // namespace ioguard
