// The host STREAMING rule parser (the `streaming` property): any text.
//
// Invariants beyond "does not crash":
// - it either refuses with a message or returns at most `max` rules, each
//   with first <= last, and writes nothing beyond them;
// - what it accepts means what it says: the rules written back in the
//   canonical form parse to the same rules;
// - an accepted rule is accepted by the engine, listed as it is, and can
//   be removed again.
#include <cinttypes>
#include <string>

#include "fuzz_machine.hh"

using namespace ioguard_fuzz;

namespace {

constexpr size_t kMax = 8;

std::string canonical(const IoguardStreamingRule &r)
{
    char text[64];
    snprintf(text, sizeof(text), "%02x:%02x.%x@0x%" PRIx64 "-0x%" PRIx64,
             r.devid >> 8, r.devid >> 3 & 0x1f, r.devid & 7, r.first, r.last);
    return text;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string text(reinterpret_cast<const char *>(data), size);
    IoguardStreamingRule rules[kMax + 1];
    const IoguardStreamingRule canary{0xdead, 1, 0};
    rules[kMax] = canary;
    char error[128] = "";
    const int n = ioguard_parse_streaming_rules(text.c_str(), rules, kMax,
                                                error, sizeof(error));
    FUZZ_CHECK(rules[kMax].devid == canary.devid &&
                   rules[kMax].first == canary.first,
               "wrote beyond %zu rules", kMax);
    if (n < 0) {
        FUZZ_CHECK(error[0] != '\0', "refused without a message: '%s'",
                   text.c_str());
        return 0;
    }
    FUZZ_CHECK(size_t(n) <= kMax, "%d rules", n);

    std::string again;
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(rules[i].first <= rules[i].last, "rule %d: %" PRIx64
                   " > %" PRIx64, i, rules[i].first, rules[i].last);
        again += (i ? "+" : "") + canonical(rules[i]);
    }
    IoguardStreamingRule reparsed[kMax];
    const int m = ioguard_parse_streaming_rules(again.c_str(), reparsed, kMax,
                                                error, sizeof(error));
    FUZZ_CHECK(m == n, "'%s' gave %d rules, its canonical form '%s' %d",
               text.c_str(), n, again.c_str(), m);
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(reparsed[i].devid == rules[i].devid &&
                       reparsed[i].first == rules[i].first &&
                       reparsed[i].last == rules[i].last,
                   "rule %d of '%s' changed meaning", i, text.c_str());
    }

    if (n == 0) {
        return 0;
    }
    IoguardConfig config{};
    config.prefetch_depth = 4;
    FuzzMachine machine(config);
    const IoguardStreamingRule &r = rules[0];
    FUZZ_CHECK(ioguard_iommu_add_streaming_rule(machine.iommu, &r),
               "engine refused '%s'", canonical(r).c_str());
    IoguardStreamingRule listed[1];
    FUZZ_CHECK(ioguard_iommu_streaming_rules(machine.iommu, listed, 1) == 1 &&
                   listed[0].first == r.first && listed[0].last == r.last,
               "engine lists something else than '%s'", canonical(r).c_str());
    FUZZ_CHECK(ioguard_iommu_remove_streaming_rule(machine.iommu, &r),
               "cannot remove '%s'", canonical(r).c_str());
    return 0;
}
