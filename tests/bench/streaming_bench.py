"""STREAMING versus CONSISTENT: the same guest workloads behind
ioguard-iommu with latency-model=on, once with the devices' DMA left
CONSISTENT (what an unmodified guest gets) and once made STREAMING by the
host policy, interleaved in one invocation.

    /usr/bin/python3 tests/bench/streaming_bench.py [--batches 2]
                     [--workloads nvme-1M,nvme-4K-random,nic-1500B]
                     [--csv build/bench/streaming.csv]

Each (configuration, workload) runs in its own VM; the statistics are reset
when the guest has read its disks (ioguard.settle), so they count the
workload only. Reported per workload, medians over the batches:
guest-measured throughput and its ratio; demand page walks (IOTLB misses:
walks a DMA waited for) per MiB; all walks per MiB (the prefetcher's own
included); modelled DMA time per MiB and its ratio, next to the factor the
model predicts for a perfectly sequential stream. The CSV feeds
scripts/plot-streaming. Machines are noisy: never turn this into a test.
"""

import argparse
import csv
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import ioguard_vm as ivm  # noqa: E402

WORK = ivm.BUILD / "bench"
DISK_MIB = 64
ROUND_TRIP_NS, WALK_READ_NS, DEPTH = 1000, 100, 32
NVME, NIC = "00:04.0", "00:06.0"

WORKLOADS = {
    # name: (requester, guest init argument, bytes per unit)
    "nvme-1M": (NVME, f"ioguard.bench=nvme0n1:{1 << 20}:{512 << 20}", None),
    "nvme-4K-random": (NVME, f"ioguard.bench=nvme0n1:4096:{16 << 20}:random",
                       None),
    "nic-1500B": (NIC, "ioguard.nicloop=1500:20000", 1500),
}
CONFIGS = {
    "consistent": [],
    "streaming": [f"streaming={NVME}+{NIC}"],
}


def run_one(config, workload, disk, tag):
    requester, guest_arg, _ = WORKLOADS[workload]
    props = ["latency-model=on", f"round-trip-ns={ROUND_TRIP_NS}",
             f"walk-read-ns={WALK_READ_NS}", f"prefetch-depth={DEPTH}",
             *CONFIGS[config]]
    extra = ["-netdev", "hubport,hubid=0,id=n0",
             "-device", "ioguard-nic,netdev=n0,bus=pcie.0,addr=0x6"]
    vm = ivm.Vm(ivm.ioguard_args(*props), [disk], extra_args=extra,
                append=f"ioguard.settle=3 {guest_arg}", smp=1,
                workdir=WORK / f"streaming-{config}-{workload}-{tag}")
    with vm:
        if not vm.wait_for("IOGUARD-SETTLE", timeout=900):
            raise RuntimeError(f"{config} {workload}: no IOGUARD-SETTLE "
                               f"({vm.serial})")
        vm.cmd("query-ioguard-stats", reset=True)
        if not vm.wait_for("IOGUARD-DONE", timeout=1800):
            raise RuntimeError(f"{config} {workload}: guest did not finish")
        stats = vm.cmd("query-ioguard-stats")[0]
    log = vm.log()
    if vm.checksums().get(disk.guest_name) != disk.sha256:
        raise RuntimeError(f"{config}: {disk.guest_name} read wrong data")
    if requester == NIC:
        m = re.search(r"IOGUARD-NICLOOP eth0 1500 sent=(\d+) received=(\d+) "
                      r"corrupt=0 lost=0 duplicate=0 ns=(\d+) .*"
                      r"sha256=(\S+) sent_sha256=(\S+)", log)
        if not m or m.group(4) != m.group(5):
            raise RuntimeError(f"{config}: frames lost or corrupted")
        nbytes, ns = int(m.group(2)) * 1500, int(m.group(3))
    else:
        m = re.search(r"IOGUARD-BENCH /dev/nvme0n1 \d+ (\d+) (\d+)", log)
        if not m:
            raise RuntimeError(f"{config} {workload}: no result")
        nbytes, ns = int(m.group(1)), int(m.group(2))
    r = next(r for r in stats["requesters"] if r["requester"] == requester)
    mib = nbytes / (1 << 20)
    model = r["model"]
    return {
        "config": config, "workload": workload,
        "mib_per_s": mib / (ns / 1e9),
        "demand_walks_per_mib": r["iotlb-misses"] / mib,
        "all_walks_per_mib": (r["iotlb-misses"] + r["prefetch"]["walks"]) / mib,
        "model_ns_per_mib": (model["read-ns"] + model["write-ns"]) / mib,
        "model_reads": model["reads"],
        "translations": r["translations"],
        "prefetch_issued": r["prefetch"]["issued"],
        "prefetch_used": r["prefetch"]["used"],
        "prefetch_unused": (r["prefetch"]["evicted-unused"] +
                            r["prefetch"]["invalidated-unused"]),
        "mib": mib,
    }


def predicted_factor(consistent):
    """The model's own prediction: a perfectly sequential stream pays no
    walk on the critical path and a round trip / depth per read."""
    ideal = consistent["model_reads"] * (ROUND_TRIP_NS // DEPTH)
    return consistent["model_ns_per_mib"] * consistent["mib"] / max(ideal, 1)


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=2)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--csv", default=str(WORK / "streaming.csv"))
    opts = ap.parse_args()
    workloads = opts.workloads.split(",")
    for w in workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w!r}; known: {', '.join(WORKLOADS)}")
    WORK.mkdir(parents=True, exist_ok=True)
    image = WORK / "streaming-nvme.img"
    disk = ivm.Disk("nvme0n1", image, ivm.make_disk(image, DISK_MIB, seed=21), [
        "-drive", f"file={image},if=none,id=nvme0,format=raw",
        "-device", "nvme,drive=nvme0,serial=bench,bus=pcie.0,addr=0x4"])
    rows = []
    started = time.time()
    for batch in range(opts.batches):
        for workload in workloads:
            for config in CONFIGS:
                row = run_one(config, workload, disk, f"b{batch}")
                row["batch"] = batch
                rows.append(row)
                print(f"batch {batch + 1}/{opts.batches} {workload:<15} "
                      f"{config:<11} {row['mib_per_s']:8.1f} MiB/s, demand "
                      f"walks/MiB {row['demand_walks_per_mib']:7.1f}, "
                      f"prefetched {row['prefetch_issued']:,} used "
                      f"{row['prefetch_used']:,}", flush=True)
    with open(opts.csv, "w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)

    print(f"\nMedians of {opts.batches} batches ({time.time() - started:.0f} s); "
          f"model: round trip {ROUND_TRIP_NS} ns, walk read {WALK_READ_NS} ns, "
          f"depth {DEPTH}\n")
    print(f"{'workload':<15}{'config':<12}{'MiB/s':>9}{'ratio':>7}"
          f"{'demand walks/MiB':>18}{'all walks/MiB':>15}"
          f"{'model us/MiB':>14}{'ratio':>8}{'predicted':>11}")
    for w in workloads:
        c = [r for r in rows if r["workload"] == w and r["config"] == "consistent"]
        s = [r for r in rows if r["workload"] == w and r["config"] == "streaming"]
        for name, rs in (("consistent", c), ("streaming", s)):
            speed = med(rs, "mib_per_s") / med(c, "mib_per_s")
            model = med(c, "model_ns_per_mib") / med(rs, "model_ns_per_mib")
            pred = statistics.median(predicted_factor(r) for r in c)
            print(f"{w:<15}{name:<12}{med(rs, 'mib_per_s'):>9.1f}{speed:>6.2f}x"
                  f"{med(rs, 'demand_walks_per_mib'):>18.1f}"
                  f"{med(rs, 'all_walks_per_mib'):>15.1f}"
                  f"{med(rs, 'model_ns_per_mib') / 1000:>14.1f}{model:>7.2f}x"
                  f"{pred if name == 'streaming' else 1:>10.2f}x")
        down = 1 - med(s, "demand_walks_per_mib") / med(c, "demand_walks_per_mib")
        down_all = 1 - med(s, "all_walks_per_mib") / med(c, "all_walks_per_mib")
        print(f"{'':<15}demand walks per MiB down {down:.1%}, all walks down "
              f"{down_all:.1%}")
    print(f"\nCSV: {opts.csv}")


if __name__ == "__main__":
    main()
