"""How much of a translated-mode slowdown is the guest's own DMA-API work?

    /usr/bin/python3 tests/bench/dma_api_profile.py [--only a,b]

Boots the guest per configuration, runs one sequential read workload with
the kernel's function_graph tracer timing every call of the DMA API's
map/unmap functions (ioguard.profile, tests/guest/init), and reports, per MiB read, the guest's
elapsed time and the time the guest spent inside those functions. Whatever
is left of the slowdown once that is taken away is the device side:
translation in the IOMMU model and QEMU's DMA path. (The tracer adds its
own overhead to the traced calls; compare configurations, not absolutes.)
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import dma_bench as bench  # noqa: E402
import guest_protocol as gp  # noqa: E402
import ioguard_vm as ivm  # noqa: E402

FUNCTIONS = ["iommu_dma_map_sg", "iommu_dma_unmap_sg", "iommu_dma_map_page",
             "iommu_dma_unmap_page", "dma_direct_map_sg",
             "dma_direct_unmap_sg"]
WORKLOADS = {"nvme-1M": ("nvme0n1", 1 << 20, 512 << 20),
             "virtio-blk-1M": ("vda", 1 << 20, 512 << 20)}


def profile(config, workload, disks):
    args, append = bench.CONFIGS[config]
    disk, block, total = WORKLOADS[workload]
    vm = ivm.Vm(args, disks, smp=1,
                append=f"{append} " + gp.kernel_params(
                    bench=(disk, block, total), profile=FUNCTIONS),
                workdir=bench.WORK / f"profile-{config}-{workload}")
    with vm:
        if not vm.wait_for("IOGUARD-DONE", timeout=1800):
            raise RuntimeError(f"{config}: guest did not finish ({vm.serial})")
    guest = gp.parse_console_log(vm.log())
    runs = guest.benches_of(f"/dev/{disk}", block)
    if not runs:
        raise RuntimeError(f"{config}: no result ({vm.serial})")
    mib = runs[0].bytes / (1 << 20)
    elapsed_us = runs[0].ns / 1000
    if not guest.profile:
        raise RuntimeError(f"{config}: no profile ({vm.serial})")
    return elapsed_us / mib, guest.profile.us / mib, guest.profile.calls


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="none,intel-iommu,ioguard-lazy,"
                                       "ioguard-strict,ioguard-pt")
    ap.add_argument("--workload", default="nvme-1M", choices=list(WORKLOADS))
    opts = ap.parse_args()
    disks = bench.disks()
    print(f"{opts.workload}, per MiB read: guest elapsed time, time inside "
          "the DMA API map/unmap calls, and the rest")
    base = None
    for config in opts.only.split(","):
        per_mib, api, calls = profile(config, opts.workload, disks)
        rest = per_mib - api
        if base is None:
            base = rest
        print(f"  {config:<15} {per_mib:8.1f} us/MiB   DMA API {api:7.1f} us/MiB"
              f" ({calls} calls)   rest {rest:8.1f} us/MiB"
              f" ({rest / base:.2f}x the first)", flush=True)


if __name__ == "__main__":
    main()
