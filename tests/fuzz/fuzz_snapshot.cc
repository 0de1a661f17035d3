// Loading saved state (snapshots, migration streams): the engine's and the
// fault injector's. The input's first byte picks which; the rest is the
// state.
//
// Invariants beyond "does not crash":
// - a state that is refused changes nothing: what is saved afterwards is
//   what was saved before;
// - a state that is accepted saves as a state that loads again and saves
//   the same (load and save agree on the format);
// - loading never does guest-visible work: no RAM access, no command run.
#include <cstdlib>
#include <vector>

#include "../saved_state.hh"
#include "fuzz_machine.hh"
#include "hw/ioguard/fault-inject.h"

using ioguard_fuzz::FuzzMachine;
using ioguard_test::load;
using ioguard_test::save;

namespace
{

// The invariants for one kind of state holder.
template <typename Holder>
void check(Holder *holder, const std::vector<uint8_t> &state)
{
    const std::vector<uint8_t> before = save(holder);
    if (!load(holder, state)) {
        FUZZ_CHECK(save(holder) == before, "a refused state changed things");
        return;
    }
    const std::vector<uint8_t> first = save(holder);
    FUZZ_CHECK(load(holder, first), "a saved state does not load");
    FUZZ_CHECK(save(holder) == first, "save, load, save differ");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    const std::vector<uint8_t> state(data + 1, data + size);
    if (data[0] & 1) {
        IoguardFaults *faults = ioguard_faults_new(7);
        check(faults, state);
        ioguard_faults_free(faults);
        return 0;
    }
    IoguardConfig config{};
    config.intremap = config.ga = config.stats = true;
    config.fault_records = 16;
    FuzzMachine m(config);
    check(m.iommu, state);
    FUZZ_CHECK(m.ram_reads == 0 && m.ram_writes == 0 && m.commands == 0,
               "loading state did guest-visible work");
    return 0;
}
