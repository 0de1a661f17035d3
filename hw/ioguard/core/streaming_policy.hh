// The host's STREAMING policy: rules, each a requester ID and an IOVA
// range, whose DMA is STREAMING whatever the guest's tables say. It is how
// an unmodified guest gets prefetching (property "streaming" at start-up,
// QMP ioguard-streaming-add/-remove at run time).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "hw/ioguard/iommu-engine.h"

namespace ioguard {

class StreamingPolicy {
public:
    bool add(const IoguardStreamingRule &rule);
    bool remove(const IoguardStreamingRule &rule);
    std::vector<IoguardStreamingRule> rules() const;

    // On every translation: one relaxed load unless a rule names devid.
    bool matches(uint16_t devid, uint64_t iova) const
    {
        if (rules_of_[devid].load(std::memory_order_relaxed) == 0) {
            return false;
        }
        return matches_slow(devid, iova);
    }

private:
    bool matches_slow(uint16_t devid, uint64_t iova) const;

    mutable std::mutex lock_;
    std::vector<IoguardStreamingRule> rules_;
    std::array<std::atomic<uint8_t>, 65536> rules_of_{};   // rules per devid
};

// "bb:dd.f[@first-last]" rules separated by '+'. False, with error naming
// the bad part, when text is malformed.
bool parse_streaming_rules(std::string_view text,
                           std::vector<IoguardStreamingRule> &rules,
                           std::string &error);

} // namespace ioguard
