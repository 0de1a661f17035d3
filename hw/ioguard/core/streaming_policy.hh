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

    // On every translation: one relaxed load unless a rule with an IOVA
    // range names devid.
    bool matches(uint16_t devid, uint64_t iova) const
    {
        const uint8_t rules = rules_of_[devid].load(std::memory_order_relaxed);
        if (rules == 0) {
            return false;
        }
        if (rules & kWholeDevice) {
            return true;
        }
        return matches_slow(devid, iova);
    }

private:
    bool matches_slow(uint16_t devid, uint64_t iova) const;

    mutable std::mutex lock_;
    std::vector<IoguardStreamingRule> rules_;
    void update_rules_of(uint16_t devid);

    // Per devid: the number of its rules, with kWholeDevice set when one
    // of them covers every IOVA.
    static constexpr uint8_t kWholeDevice = 0x80;
    std::array<std::atomic<uint8_t>, 65536> rules_of_{};
};

// "bb:dd.f[@first-last]" rules separated by '+'. False, with error naming
// the bad part, when text is malformed.
bool parse_streaming_rules(std::string_view text,
                           std::vector<IoguardStreamingRule> &rules,
                           std::string &error);

} // namespace ioguard
