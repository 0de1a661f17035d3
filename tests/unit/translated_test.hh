// The start of most engine tests: an enabled IOMMU and one requester,
// Devid, translated in Domain through a fresh 3-level table at root.
#pragma once

#include <gtest/gtest.h>

#include "fake_guest.hh"

namespace ioguard_test {

template <uint16_t Devid, uint16_t Domain>
struct TranslatedTest : ::testing::Test {
    Machine m;
    Driver d{m};
    uint64_t root = 0;
    void SetUp() override
    {
        d.enable();
        root = d.alloc_table();
        d.set_dte(Devid, Driver::dte_translated(root, 3), Domain);
    }
};

} // namespace ioguard_test
