"""How fast a fault-injection campaign runs, on this machine and through
Slurm (benchmark, not test): the same campaign, each time into a fresh
folder, with the local pool at --jobs 1 and 2, and as a job array on a
single-node Slurm of this machine (scripts/slurm_cluster.py) with 1 and 2
tasks at once; scenarios per hour, each ratio to the local --jobs 1 run,
the runner's own time through Slurm (staging, the shared-folder check,
submission, collection), and whether every scenario came out the same.

  /usr/bin/python3 tests/bench/campaign_bench.py [CAMPAIGN.json]
      [--only local-1,local-2,slurm-1,slurm-2]

Default campaign: docs/campaigns/nic-and-disk.json.
"""
import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import ioguard_vm as ivm  # noqa: E402
import slurm_cluster  # noqa: E402

CONFIGS = {"local-1": ("local", 1), "local-2": ("local", 2),
           "slurm-1": ("slurm", 1), "slurm-2": ("slurm", 2)}


def run(campaign, name, how, parallel, cluster):
    out = ivm.BUILD / "bench" / "campaign" / name
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, str(ROOT / "scripts" / "fault-campaign"),
           str(campaign), "--out", str(out)]
    if how == "local":
        cmd += ["--jobs", str(parallel)]
    else:
        cmd += ["--slurm", "--max-parallel", str(parallel)]
    start = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True,
                          env=cluster.env() if cluster else None)
    wall = time.time() - start
    rows = list(csv.DictReader(open(out / "results.csv")))
    own = re.search(r"runner's own time: (.*)", done.stderr)
    return {"wall": wall, "rows": rows,
            "own": own.group(1) if own else "",
            "vm_seconds": sum(float(r["seconds"] or 0) for r in rows)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("campaign", type=Path, nargs="?",
                   default=ROOT / "docs" / "campaigns" / "nic-and-disk.json")
    p.add_argument("--only", default=",".join(CONFIGS))
    args = p.parse_args()
    names = args.only.split(",")
    bad = [n for n in names if n not in CONFIGS]
    if bad:
        p.error(f"--only {','.join(bad)}: none of {', '.join(CONFIGS)}")
    results = {}
    cluster = None
    try:
        if any(CONFIGS[n][0] == "slurm" for n in names):
            cluster = slurm_cluster.SingleNodeSlurm(
                ivm.BUILD / "bench" / "campaign" / "slurm").start()
        for name in names:
            how, parallel = CONFIGS[name]
            print(f"running {name} ...", file=sys.stderr, flush=True)
            results[name] = run(args.campaign, name, how, parallel,
                                cluster if how == "slurm" else None)
    finally:
        if cluster:
            cluster.stop()
    first = results[names[0]]
    n = len(first["rows"])
    print(f"{args.campaign.name}: {n} scenarios, {os.cpu_count()} cores")
    print(f"{'':10} {'wall s':>8} {'per hour':>9} {'ratio':>6} "
          f"{'VM s':>7} {'same':>5}  runner's own time")
    for name, r in results.items():
        outcome = {row["scenario"]: row["outcome"] for row in first["rows"]}
        same = sum(outcome[row["scenario"]] == row["outcome"]
                   for row in r["rows"])
        print(f"{name:10} {r['wall']:8.0f} {3600 * n / r['wall']:9.1f} "
              f"{first['wall'] / r['wall']:6.2f} {r['vm_seconds']:7.0f} "
              f"{same:>2}/{n:<2}  {r['own']}")
    print(f"ratio: scenarios per hour over {names[0]}'s; VM s: the "
          "scenarios' own seconds summed; same: outcomes equal to "
          f"{names[0]}'s")


if __name__ == "__main__":
    main()
