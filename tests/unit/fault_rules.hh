// Fault rules for a test machine: the rule set an IoguardConfig points at
// (faults), and a rule added as ioguard-fault-add adds one.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "fake_guest.hh"
#include "hw/ioguard/fault-inject.h"

namespace ioguard_test {

struct FaultRules {
    IoguardFaults *f = ioguard_faults_new(1);

    FaultRules() = default;
    FaultRules(const FaultRules &) = delete;
    FaultRules &operator=(const FaultRules &) = delete;
    ~FaultRules() { ioguard_faults_free(f); }

    // Adds rule at now and tells iommu; its id (0, and a failed test, if
    // the rule is refused).
    uint32_t add(IoguardIommu *iommu, uint64_t now, const std::string &rule)
    {
        char error[256] = "";
        const uint32_t id = ioguard_faults_add(f, rule.c_str(), now, ~0u,
                                               error, sizeof(error));
        EXPECT_NE(id, 0u) << rule << ": " << error;
        ioguard_iommu_faults_changed(iommu);
        return id;
    }
};

} // namespace ioguard_test
