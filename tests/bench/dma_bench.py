"""Whole-VM DMA benchmark: guest-measured throughput with no IOMMU,
QEMU's amd-iommu, intel-iommu and ioguard-iommu (lazy, strict, passthrough,
and lazy with Linux's v2 page tables: guest-translation=on,
amd_iommu=pgtbl_v2),
interleaved in one invocation, each reported as a ratio to the no-IOMMU run
of the same batch (median over the batches).

    /usr/bin/python3 tests/bench/dma_bench.py [--batches 3] [--only a,b]
                                              [--workloads nic-64B,...]
                                              [--before-qemu PATH]

Workloads: disk reads, sequential with O_DIRECT (tests/guest/readbench.cc):
NVMe 1 MiB, NVMe 4 KiB, virtio-blk (iommu_platform=on) 1 MiB; and
ioguard-nic internal loopback with 64- and 1500-byte frames through the
driver and an AF_PACKET socket (tests/guest/nictool.cc), every frame
checked. The devices sit on the root bus so that amd-iommu can drive them
too. --before-qemu runs every ioguard configuration a second time, as
CONFIG-before, with another build of QEMU (an earlier commit's) in the same
batches, so that a change is measured against the noise of the same run.
Machines are noisy: read the ratios, not single numbers, and never
turn this into a test assertion.
"""

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import guest_protocol as gp  # noqa: E402
import ioguard_vm as ivm  # noqa: E402

WORK = ivm.BUILD / "bench"
DISK_MIB = 64

WORKLOADS = [
    # (name, device, block or frame bytes, total bytes or frames: several
    # seconds each)
    ("nvme-1M", "nvme0n1", 1 << 20, 1024 << 20),
    ("nvme-4K", "nvme0n1", 4096, 32 << 20),
    ("virtio-blk-1M", "vda", 1 << 20, 1024 << 20),
    ("nic-64B", "nic", 64, 20000),
    ("nic-1500B", "nic", 1500, 20000),
    # The same frames mapped one by one through the DMA API (tx-copybreak
    # 0) instead of copied into the driver's premapped buffers.
    ("nic-1500B-mapped", "nic", 1500, 20000),
]
# The driver's tx-copybreak for each NIC workload (2048, its default:
# every frame is copied).
COPYBREAK = {"nic-1500B-mapped": 0}
NIC_ARGS = ["-netdev", "hubport,hubid=0,id=n0",
            "-device", "ioguard-nic,netdev=n0,bus=pcie.0,addr=0x6"]

CONFIGS = {
    "none": ([], ""),
    "amd-iommu": (["-device", "amd-iommu,intremap=on"], ""),
    "intel-iommu": (["-M", "q35,kernel-irqchip=split",
                     "-device", "intel-iommu,intremap=on"],
                    "intel_iommu=on"),
    "ioguard-lazy": (ivm.ioguard_args(), ""),
    "ioguard-strict": (ivm.ioguard_args(), "iommu.strict=1"),
    "ioguard-pt": (ivm.ioguard_args(), "iommu=pt"),
    "ioguard-v2": (ivm.ioguard_args("guest-translation=on"),
                   "amd_iommu=pgtbl_v2"),
}


def disks():
    WORK.mkdir(parents=True, exist_ok=True)
    nvme, vblk = WORK / "nvme.img", WORK / "vblk.img"
    sums = [ivm.make_disk(p, DISK_MIB, seed=s) for p, s in ((nvme, 21), (vblk, 22))]
    return [
        ivm.Disk("nvme0n1", nvme, sums[0], [
            "-drive", f"file={nvme},if=none,id=nvme0,format=raw",
            "-device", "nvme,drive=nvme0,serial=bench,bus=pcie.0,addr=0x4"]),
        ivm.Disk("vda", vblk, sums[1], [
            "-drive", f"file={vblk},if=none,id=vblk0,format=raw",
            "-device", "virtio-blk-pci,drive=vblk0,bus=pcie.0,addr=0x5,"
                       "iommu_platform=on,disable-legacy=on"]),
    ]


def run_one(config, workloads, disk_list, tag, smp, before_qemu):
    qemu = ivm.QEMU
    if config.endswith("-before"):
        config, qemu = config[:-len("-before")], before_qemu
    args, append = CONFIGS[config]
    bench = [(d, b, t) for _, d, b, t in workloads if d != "nic"]
    loops = [(b, t, COPYBREAK.get(n, 2048))
             for n, d, b, t in workloads if d == "nic"]
    vm = ivm.Vm(args, disk_list, extra_args=NIC_ARGS if loops else [],
                append=f"{append} "
                       f"{gp.kernel_params(bench=bench, nicloop=loops)}",
                smp=smp, workdir=WORK / f"{config}-{tag}", qemu=qemu)
    with vm:
        if not vm.wait_for("IOGUARD-DONE", timeout=1800):
            raise RuntimeError(f"{config}: guest did not finish ({vm.serial})")
        stats = vm.stats() if config.startswith("ioguard") else None
    guest = gp.parse_console_log(vm.log())
    for d in disk_list:
        if vm.checksums().get(d.guest_name) != d.sha256:
            raise RuntimeError(f"{config}: {d.guest_name} read wrong data")
    results = {}
    # One run per NIC workload, in the order of the workloads.
    nic_runs = iter(guest.nic_loops_of("eth0"))
    for name, dev, block, _ in workloads:
        if dev == "nic":
            run = next(nic_runs, None)
            if run is None or run.frame_bytes != block or not run.intact:
                raise RuntimeError(f"{config}: {name} lost or corrupted "
                                   f"frames ({vm.serial})")
            nbytes, ns = run.received * block, run.ns
        else:
            runs = guest.benches_of(f"/dev/{dev}", block)
            if not runs:
                raise RuntimeError(f"{config}: no result for {name} "
                                   f"({vm.serial})")
            nbytes, ns = runs[0].bytes, runs[0].ns
        results[name] = nbytes / (ns / 1e9) / (1 << 20)
    return results, stats


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--only", help="comma-separated configurations")
    ap.add_argument("--workloads", help="comma-separated workloads; known: " +
                    ", ".join(w[0] for w in WORKLOADS))
    ap.add_argument("--frames", type=int,
                    help="frames per NIC workload (default 20000): longer "
                         "runs average out more of the host's noise")
    ap.add_argument("--smp", type=int, default=1,
                    help="guest vCPUs (default 1: one TCG thread and the I/O "
                         "thread fit a 2-core host, which keeps noise down)")
    ap.add_argument("--before-qemu", type=Path, metavar="PATH",
                    help="another qemu-system-x86_64 (e.g. an earlier "
                         "commit's build) to run each ioguard configuration "
                         "with as well, in the same batches")
    opts = ap.parse_args()
    configs = list(CONFIGS)
    if opts.only:
        configs = ["none"] + [c for c in opts.only.split(",") if c != "none"]
        for c in configs:
            if c not in CONFIGS:
                ap.error(f"unknown configuration {c!r}; known: {', '.join(CONFIGS)}")
    if opts.before_qemu:
        if not os.access(opts.before_qemu, os.X_OK):
            ap.error(f"--before-qemu {opts.before_qemu}: not an executable")
        configs = [x for c in configs for x in
                   ([c, f"{c}-before"] if c.startswith("ioguard") else [c])]
    workloads = WORKLOADS
    if opts.workloads:
        known = {w[0]: w for w in WORKLOADS}
        for w in opts.workloads.split(","):
            if w not in known:
                ap.error(f"unknown workload {w!r}; known: {', '.join(known)}")
        workloads = [known[w] for w in opts.workloads.split(",")]
    if opts.frames:
        workloads = [(n, d, b, opts.frames if d == "nic" else t)
                     for n, d, b, t in workloads]
    used = {w[1] for w in workloads}
    disk_list = [d for d in disks() if d.guest_name in used]
    mibs = {c: {w[0]: [] for w in workloads} for c in configs}
    ratios = {c: {w[0]: [] for w in workloads} for c in configs}
    last_stats = {}
    failures = []
    for batch in range(opts.batches):
        batch_result = {}
        order = configs
        if batch % 2:
            # Every other batch runs the earlier build first, so that the
            # order does not favour either.
            order = [x for c in configs if not c.endswith("-before")
                     for x in ([f"{c}-before", c] if f"{c}-before" in configs
                               else [c])]
        for config in order:
            try:
                res, stats = run_one(config, workloads, disk_list, f"b{batch}",
                                     opts.smp, opts.before_qemu)
            except RuntimeError as e:
                # A configuration that crashes its guest or reads wrong data
                # is reported, not averaged.
                failures.append(f"batch {batch + 1}: {e}")
                print(f"batch {batch + 1}/{opts.batches} {config:<20} FAILED: {e}",
                      flush=True)
                continue
            batch_result[config] = res
            if stats:
                last_stats[config] = stats
            print(f"batch {batch + 1}/{opts.batches} {config:<20} " +
                  "  ".join(f"{k} {v:8.1f} MiB/s" for k, v in res.items()),
                  flush=True)
        if "none" not in batch_result:
            continue
        for config, res in batch_result.items():
            for w, v in res.items():
                mibs[config][w].append(v)
                ratios[config][w].append(v / batch_result["none"][w])

    print(f"\nMedian of {opts.batches} batches; ratio = throughput / no-IOMMU "
          "throughput of the same batch (median of the per-batch ratios, "
          "then the lowest and highest of them)\n")
    header = f"{'configuration':<20}" + "".join(f"{w[0]:>36}" for w in workloads)
    print(header)
    for config in configs:
        if not mibs[config][workloads[0][0]]:
            print(f"{config:<20}  (no successful run)")
            continue
        cells = ""
        for w in workloads:
            r = ratios[config][w[0]]
            span = f"({min(r):.2f}-{max(r):.2f})"
            cells += (f"{statistics.median(mibs[config][w[0]]):>9.1f} MiB/s "
                      f"{statistics.median(r):>6.2f}x {span:>11}")
        print(f"{config:<20}{cells}")
    for failure in failures:
        print("FAILED", failure)
    for config, stats in last_stats.items():
        walks = stats["page-walks"]
        print(f"\n{config} (last batch): translations {stats['translations']:,}, "
              f"IOTLB hits {stats['iotlb-hits']:,}, misses {stats['iotlb-misses']:,}, "
              f"page walks {walks:,}, passthrough {stats['passthrough']:,}, "
              f"invalidations {stats['invalidations']:,}")


if __name__ == "__main__":
    main()
