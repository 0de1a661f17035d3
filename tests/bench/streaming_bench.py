"""STREAMING versus CONSISTENT: the same guest workloads behind
ioguard-iommu with latency-model=on, once with the devices' DMA left
CONSISTENT (what an unmodified guest gets) and once made STREAMING by the
host policy, interleaved in one invocation.

    /usr/bin/python3 tests/bench/streaming_bench.py [--batches 2]
                     [--workloads nvme-1M,nvme-write-1M,nvme-4K-random,...]
                     [--csv build/bench/streaming.csv]

Each (configuration, workload) runs in its own VM; the statistics are reset
when the guest has read its disks (ioguard.settle), so they count the
workload only. Reported per workload, medians over the batches:
guest-measured throughput and its ratio to CONSISTENT in the same batch
(with the lowest and highest of those ratios); demand page walks (IOTLB
misses: walks a DMA waited for) per MiB; all walks per MiB (the
prefetcher's own included); modelled DMA read time per MiB and its ratio,
next to the factor the model predicts (see predicted_factor) and the ideal
of a perfectly sequential stream. The CSV feeds scripts/plot-streaming.
Machines are noisy: never turn this into a test.
"""

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import guest_protocol as gp  # noqa: E402
import ioguard_vm as ivm  # noqa: E402

WORK = ivm.BUILD / "bench"
DISK_MIB = 64
ROUND_TRIP_NS, WALK_READ_NS, DEPTH = 1000, 100, 32
NVME, NIC = "00:04.0", "00:06.0"

WORKLOADS = {
    # name: (requester, init's parameters, bytes per unit)
    "nvme-1M": (NVME, {"bench": ("nvme0n1", 1 << 20, 512 << 20)}, None),
    # Writes: the device DMA-reads each 1 MiB buffer, page after page (the
    # disk is a snapshot=on overlay, so the image stays as it was).
    "nvme-write-1M": (NVME,
                      {"bench": ("nvme0n1", 1 << 20, 256 << 20, "write")},
                      None),
    "nvme-4K-random": (NVME,
                       {"bench": ("nvme0n1", 4096, 16 << 20, "random")},
                       None),
    # The driver copies each frame into buffers mapped once (its default);
    # "mapped" has it map each frame where it lies (tx-copybreak 0).
    "nic-1500B": (NIC, {"nicloop": (1500, 20000)}, 1500),
    "nic-1500B-mapped": (NIC, {"nicloop": (1500, 20000, 0)}, 1500),
}
CONFIGS = {
    "consistent": [],
    "streaming": [f"streaming={NVME}+{NIC}"],
}


def run_one(config, workload, disk, tag):
    requester, guest_params, _ = WORKLOADS[workload]
    if "write" in guest_params.get("bench", ()):
        disk = ivm.Disk(disk.guest_name, disk.image, disk.sha256,
                        [a + ",snapshot=on" if a.startswith("file=") else a
                         for a in disk.args])
    props = ["latency-model=on", f"round-trip-ns={ROUND_TRIP_NS}",
             f"walk-read-ns={WALK_READ_NS}", f"prefetch-depth={DEPTH}",
             *CONFIGS[config]]
    extra = ["-netdev", "hubport,hubid=0,id=n0",
             "-device", "ioguard-nic,netdev=n0,bus=pcie.0,addr=0x6"]
    vm = ivm.Vm(ivm.ioguard_args(*props), [disk], extra_args=extra,
                append=gp.kernel_params(settle=3, **guest_params), smp=1,
                workdir=WORK / f"streaming-{config}-{workload}-{tag}")
    with vm:
        if not vm.wait_for("IOGUARD-SETTLE", timeout=900):
            raise RuntimeError(f"{config} {workload}: no IOGUARD-SETTLE "
                               f"({vm.serial})")
        vm.cmd("query-ioguard-stats", reset=True)
        if not vm.wait_for("IOGUARD-DONE", timeout=1800):
            raise RuntimeError(f"{config} {workload}: guest did not finish")
        stats = vm.cmd("query-ioguard-stats")[0]
    guest = gp.parse_console_log(vm.log())
    if vm.checksums().get(disk.guest_name) != disk.sha256:
        raise RuntimeError(f"{config}: {disk.guest_name} read wrong data")
    if requester == NIC:
        runs = guest.nic_loops_of("eth0", 1500)
        if not runs or not runs[0].intact:
            raise RuntimeError(f"{config}: frames lost or corrupted")
        nbytes, ns = runs[0].received * 1500, runs[0].ns
    else:
        runs = guest.benches_of("/dev/nvme0n1")
        if not runs:
            raise RuntimeError(f"{config} {workload}: no result")
        nbytes, ns = runs[0].bytes, runs[0].ns
    r = next(r for r in stats["requesters"] if r["requester"] == requester)
    mib = nbytes / (1 << 20)
    model = r["model"]
    return {
        "config": config, "workload": workload,
        "mib_per_s": mib / (ns / 1e9),
        "demand_walks_per_mib": r["iotlb-misses"] / mib,
        "all_walks_per_mib": (r["iotlb-misses"] + r["prefetch"]["walks"]) / mib,
        "model_ns_per_mib": (model["read-ns"] + model["write-ns"]) / mib,
        "model_read_ns_per_mib": model["read-ns"] / mib,
        "model_reads_per_mib": model["reads"] / mib,
        "model_pipelined_reads_per_mib": model["pipelined-reads"] / mib,
        "translations": r["translations"],
        "prefetch_issued": r["prefetch"]["issued"],
        "prefetch_used": r["prefetch"]["used"],
        "prefetch_unused": (r["prefetch"]["evicted-unused"] +
                            r["prefetch"]["invalidated-unused"]),
        "mib": mib,
    }


def predicted_factor(consistent, streaming):
    """What the model predicts STREAMING does to the read time of this
    workload: a read that continues a stream (the STREAMING run counts
    them: pipelined reads) has its walk done ahead and its round trip
    overlapped, round trip / depth; a read that starts one costs what a
    CONSISTENT read costs on average. The measured factor falls short of
    this where the prefetcher left a continuing read to walk."""
    per_read = (consistent["model_read_ns_per_mib"] /
                max(consistent["model_reads_per_mib"], 1e-9))
    pipelined = streaming["model_pipelined_reads_per_mib"]
    starts = streaming["model_reads_per_mib"] - pipelined
    predicted = starts * per_read + pipelined * (ROUND_TRIP_NS / DEPTH)
    return consistent["model_read_ns_per_mib"] / max(predicted, 1e-9)


def ideal_factor(consistent):
    """A perfectly sequential stream: every read pipelined, no walk."""
    ideal = consistent["model_reads_per_mib"] * (ROUND_TRIP_NS / DEPTH)
    return consistent["model_read_ns_per_mib"] / max(ideal, 1e-9)


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=2)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--csv", default=str(WORK / "streaming.csv"))
    ap.add_argument("--report", metavar="CSV",
                    help="print the summary of an earlier run's CSV, run "
                         "nothing")
    opts = ap.parse_args()
    if opts.report:
        rows = [{k: v if k in ("config", "workload") else float(v)
                 for k, v in r.items()} for r in csv.DictReader(open(opts.report))]
        report(rows, list(dict.fromkeys(r["workload"] for r in rows)),
               f"{max(r['batch'] for r in rows) + 1:.0f} batches")
        return
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

    report(rows, workloads, f"{opts.batches} batches "
           f"({time.time() - started:.0f} s)")
    print(f"\nCSV: {opts.csv}")


def report(rows, workloads, what):
    print(f"\nMedians of {what}; model: round trip {ROUND_TRIP_NS} ns, "
          f"walk read {WALK_READ_NS} ns, depth {DEPTH}\n")
    print(f"{'workload':<17}{'config':<12}{'MiB/s':>8}{'ratio (range)':>20}"
          f"{'demand walks/MiB':>18}{'all walks/MiB':>15}"
          f"{'read us/MiB':>13}{'ratio':>8}{'predicted':>11}{'ideal':>8}")
    for w in workloads:
        c = [r for r in rows if r["workload"] == w and r["config"] == "consistent"]
        s = [r for r in rows if r["workload"] == w and r["config"] == "streaming"]
        # Each batch's STREAMING run against its own CONSISTENT run.
        pairs = [(a, b) for a in c for b in s if a["batch"] == b["batch"]]
        for name, rs in (("consistent", c), ("streaming", s)):
            speeds = [1.0] if name == "consistent" else \
                [b["mib_per_s"] / a["mib_per_s"] for a, b in pairs]
            span = f"({min(speeds):.2f}-{max(speeds):.2f})"
            model = (med(c, "model_read_ns_per_mib") /
                     max(med(rs, "model_read_ns_per_mib"), 1e-9))
            if name == "streaming":
                pred = f"{statistics.median(predicted_factor(a, b) for a, b in pairs):>10.2f}x"
                ideal = f"{statistics.median(ideal_factor(a) for a in c):>7.2f}x"
            else:
                pred, ideal = f"{'':>11}", f"{'':>8}"
            print(f"{w:<17}{name:<12}{med(rs, 'mib_per_s'):>8.1f}"
                  f"{statistics.median(speeds):>7.2f}x {span:>12}"
                  f"{med(rs, 'demand_walks_per_mib'):>18.1f}"
                  f"{med(rs, 'all_walks_per_mib'):>15.1f}"
                  f"{med(rs, 'model_read_ns_per_mib') / 1000:>13.1f}"
                  f"{model:>7.2f}x{pred}{ideal}")
        down = 1 - med(s, "demand_walks_per_mib") / med(c, "demand_walks_per_mib")
        down_all = 1 - med(s, "all_walks_per_mib") / med(c, "all_walks_per_mib")
        print(f"{'':<17}demand walks per MiB down {down:.1%}, all walks down "
              f"{down_all:.1%}")


if __name__ == "__main__":
    main()
