"""DPDK-in-guest benchmark: Debian 12's dpdk-testpmd forwarding between two
e1000s on one QEMU hub, bound to vfio-pci in the guest (as
tests/guest/test_dpdk_vfio.py does), behind QEMU's intel-iommu and
amd-iommu and ioguard-iommu, interleaved in one invocation; each reported
as packets per second and as a ratio to intel-iommu's run of the same
batch (median over the batches). There is no run without an IOMMU: VFIO
needs one, and Debian's kernel has no VFIO no-IOMMU mode.

    /usr/bin/python3 tests/bench/dpdk_bench.py [--batches 3] [--seconds 10]
                                               [--only a,b]

Needs scripts/build-guest --dpdk (scripts/test builds it). Machines are
noisy: read the ratios, not single numbers, and never turn this into a
test assertion.
"""

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import guest_protocol as gp  # noqa: E402
import ioguard_vm as ivm  # noqa: E402

WORK = ivm.BUILD / "bench" / "dpdk"
NICS = ("00:06.0", "00:07.0")

CONFIGS = {
    # the reference: the goal is ioguard >= intel-iommu
    "intel-iommu": (["-M", "q35,kernel-irqchip=split",
                     "-device", "intel-iommu,intremap=on"], "intel_iommu=on"),
    "amd-iommu": (["-device", "amd-iommu,intremap=on"], ""),
    "ioguard": (ivm.ioguard_args(), ""),
}
REFERENCE = "intel-iommu"


def run_one(config, seconds, guest, tag):
    args, append = CONFIGS[config]
    nics = []
    for i, nic in enumerate(NICS):
        nics += ["-netdev", f"hubport,id=hub{i},hubid=0",
                 "-device", f"e1000,netdev=hub{i},addr={nic[3:]},romfile="]
    vm = ivm.Vm(args, [], guest=guest, workdir=WORK / f"{config}-{tag}",
                append=f"{append} " + gp.kernel_params(run="dpdk-testpmd.sh",
                                                       dpdktime=seconds),
                extra_args=["-cpu", "max", *nics])
    with vm:
        if not vm.wait_for("IOGUARD-DONE", timeout=900):
            raise RuntimeError(f"{config}: guest did not finish ({vm.serial})")
    run = gp.parse_console_log(vm.log()).dpdk
    if run is None or run.ports != 2 or run.exit != 0 or run.rx == 0:
        raise RuntimeError(f"{config}: testpmd did not forward: {run} "
                           f"({vm.serial})")
    return run.rx / seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10,
                    help="how long testpmd forwards in each run")
    ap.add_argument("--only", help="comma-separated configurations")
    opts = ap.parse_args()
    configs = list(CONFIGS)
    if opts.only:
        configs = [REFERENCE] + [c for c in opts.only.split(",")
                                 if c != REFERENCE]
        for c in configs:
            if c not in CONFIGS:
                ap.error(f"unknown configuration {c!r}; known: "
                         f"{', '.join(CONFIGS)}")
    guest = Path(ivm.GUEST).resolve()
    folder = ivm.guest_with_extra(WORK / "guest", guest / "vfio.cpio.gz",
                                  guest / "dpdk.cpio.gz")
    pps = {c: [] for c in configs}
    ratios = {c: [] for c in configs}
    for batch in range(opts.batches):
        result = {}
        # Every other batch in the other order, so that none is favoured.
        for config in configs if batch % 2 == 0 else configs[::-1]:
            try:
                result[config] = run_one(config, opts.seconds, folder,
                                         f"b{batch}")
            except RuntimeError as e:
                print(f"batch {batch + 1}/{opts.batches} {config:<12} "
                      f"FAILED: {e}", flush=True)
                continue
            print(f"batch {batch + 1}/{opts.batches} {config:<12} "
                  f"{result[config]:12,.0f} packets/s", flush=True)
        if REFERENCE not in result:
            continue
        for config, value in result.items():
            pps[config].append(value)
            ratios[config].append(value / result[REFERENCE])

    print(f"\nMedian of {opts.batches} batches; ratio = packets/s / "
          f"{REFERENCE}'s packets/s in the same batch (median, then lowest "
          "and highest)\n")
    print(f"{'configuration':<14}{'packets/s':>14}{'ratio':>24}")
    for config in configs:
        if not ratios[config]:
            print(f"{config:<14}{'failed':>14}")
            continue
        r = ratios[config]
        print(f"{config:<14}{statistics.median(pps[config]):14,.0f}"
              f"{statistics.median(r):12.3f} ({min(r):.3f}-{max(r):.3f})")


if __name__ == "__main__":
    main()
