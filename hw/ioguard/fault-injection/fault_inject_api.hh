// The C API's IoguardFaults: a FaultInjector that a device owns and, for
// ioguard-iommu, hands to the engine (IoguardConfig.faults).
#pragma once

#include "fault_rules.hh"

struct IoguardFaults {
    explicit IoguardFaults(uint64_t seed) : injector(seed) {}
    ioguard::FaultInjector injector;
};
