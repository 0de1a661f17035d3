// Saved engine and fault-injector state as byte vectors, for the tests and
// fuzz targets of snapshots (the C API hands out malloc()ed buffers).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "hw/ioguard/fault-inject.h"
#include "hw/ioguard/iommu-engine.h"

namespace ioguard_test {

inline std::vector<uint8_t> take_saved(uint8_t *bytes, size_t size)
{
    std::vector<uint8_t> out(bytes, bytes + size);
    free(bytes);
    return out;
}

inline std::vector<uint8_t> save(IoguardIommu *iommu)
{
    size_t size = 0;
    uint8_t *bytes = ioguard_iommu_save_state(iommu, &size);
    return take_saved(bytes, size);
}

inline std::vector<uint8_t> save(IoguardFaults *faults)
{
    size_t size = 0;
    uint8_t *bytes = ioguard_faults_save(faults, &size);
    return take_saved(bytes, size);
}

inline bool load(IoguardIommu *iommu, const std::vector<uint8_t> &state)
{
    return ioguard_iommu_load_state(iommu, state.data(), state.size());
}

inline bool load(IoguardFaults *faults, const std::vector<uint8_t> &state)
{
    return ioguard_faults_load(faults, state.data(), state.size());
}

} // namespace ioguard_test
