"""The fault-injection campaign runner end to end (scripts/fault-campaign):
tests/campaigns/smoke.json's five scenarios, one from a snapshot, two VMs
at once, each classified from its guest's log and ioguard's records and
checked against what the scenario expects; the CSV and the HTML page with
its plots are written. A campaign whose runner is killed resumes where it
stopped. The same campaign through a real single-node Slurm (Debian's
slurmctld, slurmd and munged, started and stopped here) as a job array
gives the same outcomes; a cancelled array resumes; bad Slurm input is
refused naming the value."""

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import ioguard_vm as ivm  # noqa: E402
import slurm_cluster  # noqa: E402

OUT = ivm.BUILD / "tests" / "guest" / "campaign"
SMOKE = ROOT / "tests" / "campaigns" / "smoke.json"
CAMPAIGN = [sys.executable, str(ROOT / "scripts" / "fault-campaign")]


def results(out):
    return {r["scenario"]: r for r in csv.DictReader(open(out /
                                                          "results.csv"))}


@pytest.fixture(scope="module")
def local_smoke():
    """smoke.json run on this machine, two VMs at once: the command's
    output and the rows of its results.csv."""
    shutil.rmtree(OUT, ignore_errors=True)
    run = subprocess.run(CAMPAIGN + [str(SMOKE), "--jobs", "2", "--out",
                                     str(OUT)],
                         capture_output=True, text=True, timeout=1800)
    return run, results(OUT)


@pytest.fixture(scope="module")
def slurm():
    """A single-node Slurm of this machine, stopped whatever happens. Its
    arrays have at most 4 tasks (MaxArraySize, 1001 by default), so that
    the runner must put a campaign of 5 in fewer."""
    folder = ivm.BUILD / "tests" / "guest" / "slurm"
    shutil.rmtree(folder, ignore_errors=True)
    with slurm_cluster.SingleNodeSlurm(folder,
                                       max_array_size=4) as cluster:
        yield cluster


def test_smoke_campaign(local_smoke):
    run, rows = local_smoke
    assert run.returncode == 0, run.stdout + run.stderr
    outcome = {n: r["outcome"] for n, r in rows.items()}
    assert outcome == {
        "baseline": "no-effect",
        "nic-writes-refused": "detected-recovered",
        "te-reads-corrupted": "silent-data-corruption",
        "completion-lost": "detected-recovered",
        "from-snapshot-nic-dma-error": "detected-recovered",
    }, run.stdout
    fired = {n: int(r["faults_fired"]) for n, r in rows.items()}
    assert fired["baseline"] == 0
    assert all(fired[s] == 1 for s in fired if s != "baseline"), fired
    # Only the IOMMU's own faults make events in its records.
    events = {n: int(r["iommu_events"]) for n, r in rows.items()}
    assert events["nic-writes-refused"] >= 1 and events["baseline"] == 0
    assert events["from-snapshot-nic-dma-error"] == 0
    page = (OUT / "results.html").read_text()
    assert page.count("<svg") == 2 and "silent-data-corruption" in page
    # The progress bar counted every scenario.
    assert "5/5" in run.stderr
    assert {r["host"] for r in rows.values()} == {socket.gethostname()}


def test_campaign_errors_name_the_value(tmp_path):
    """A campaign file that cannot run is refused before any VM starts,
    with the scenario and the value that is wrong."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"scenarios": [{"name": "sata-disk", "disk_mib": 4, '
                   '"disk": "sata"}]}')
    run = subprocess.run(CAMPAIGN + [str(bad), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.strip() == ("fault-campaign: scenario sata-disk: disk "
                                  "'sata' is none of ahci, nvme"), run.stderr
    bad.write_text('{"snapshots": {"up": {"at": "X", "memory": "1.5G"}}, '
                   '"scenarios": [{"name": "a", "snapshot": "up"}]}')
    run = subprocess.run(CAMPAIGN + [str(bad), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.strip() == (
        "fault-campaign: snapshot up: memory '1.5G' is not a size in MiB (a "
        "number, or with M or G: 512M, 2G)"), run.stderr
    # --slurm on a machine without Slurm's commands
    run = subprocess.run(CAMPAIGN + [str(SMOKE), "--slurm", "--out",
                                     str(tmp_path / "out")],
                         env=dict(os.environ, PATH="/nonexistent"),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.strip() == (
        "fault-campaign: --slurm: sbatch not found: Slurm's client commands "
        "(Debian: slurm-client) must be on this machine, configured for the "
        "cluster"), run.stderr


def part_of_smoke(folder, names):
    """A campaign file in folder of smoke.json's scenarios names."""
    smoke = json.loads(SMOKE.read_text())["scenarios"]
    campaign = folder / "part.json"
    campaign.write_text(json.dumps(
        {"scenarios": [s for name in names for s in smoke
                       if s["name"] == name]}))
    return campaign


def assert_resumed(run, out, names):
    """The run again after names[1] was stopped while it ran: names[0]'s
    result reused, names[1] run a second time, names[2] once, every outcome
    as smoke.json expects."""
    assert run.returncode == 0, run.stdout + run.stderr
    rows = results(out)
    assert list(rows) == list(names)
    assert {n: (r["reused"], r["attempts"]) for n, r in rows.items()} == {
        names[0]: ("yes", "1"), names[1]: ("no", "2"), names[2]: ("no", "1")}
    expected = {s["name"]: s["expect"]
                for s in json.loads(SMOKE.read_text())["scenarios"]}
    assert all(r["outcome"] == expected[n] for n, r in rows.items()), rows
    assert f"from an earlier run into {out}: {names[0]}" in run.stdout
    assert f"run again (an earlier start left no result): {names[1]}" \
        in run.stdout
    # The progress bar started from the result it had.
    assert "] 1/3 " in run.stderr and "] 0/3 " not in run.stderr, run.stderr


def processes_naming(path):
    """The processes whose command line names path."""
    found = []
    for p in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (p / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue        # gone meanwhile
        if str(path).encode() in cmdline:
            found.append(p.name)
    return found


def test_a_killed_campaign_resumes_where_it_stopped(tmp_path):
    """The runner is killed (SIGKILL, nothing of it runs on) while its
    second scenario runs; its VM dies with it. Run again into the same
    folder, the campaign completes: the first scenario's result is reused,
    the second is run again, the third runs once, and no result is lost."""
    keep = ("te-reads-corrupted", "completion-lost", "nic-writes-refused")
    campaign = part_of_smoke(tmp_path, keep)
    out = ivm.BUILD / "tests" / "guest" / "campaign-resume"
    shutil.rmtree(out, ignore_errors=True)
    cmd = CAMPAIGN + [str(campaign), "--jobs", "1", "--out", str(out)]
    runner = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    second = out / keep[1]
    deadline = time.time() + 900
    while not ((out / keep[0] / "result.json").exists() and
               (second / "qemu.stderr").exists()):
        assert runner.poll() is None and time.time() < deadline
        time.sleep(0.5)
    runner.kill()
    runner.wait()
    # Its VM went with it: nothing writes into the folder any more.
    time.sleep(2)
    assert not processes_naming(second), \
        "the killed runner's QEMU is still running"
    assert not (second / "result.json").exists()

    run = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout + run.stderr
    assert_resumed(run, out, keep)


def test_campaign_through_slurm_equals_local(slurm, local_smoke):
    """smoke.json as a Slurm job array (tasks of two scenarios, as the
    cluster takes arrays of 4 tasks at most; the snapshot saved once by a
    job the array waits for) comes out as it does on this machine: the
    same outcomes and faults, exactly the same for the scenario that
    starts from the snapshot."""
    out = ivm.BUILD / "tests" / "guest" / "campaign-slurm"
    shutil.rmtree(out, ignore_errors=True)
    run = subprocess.run(CAMPAIGN + [str(SMOKE), "--slurm", "--partition",
                                     slurm.partition, "--out", str(out)],
                         env=slurm.env(), capture_output=True, text=True,
                         timeout=1800)
    assert run.returncode == 0, run.stdout + run.stderr
    rows, local = results(out), local_smoke[1]
    assert list(rows) == list(local)
    same = ("outcome", "faults_fired")
    assert {n: [r[k] for k in same] for n, r in rows.items()} == \
        {n: [r[k] for k in same] for n, r in local.items()}, run.stdout
    snap = "from-snapshot-nic-dma-error"
    assert {k: rows[snap][k] for k in ("iommu_events", "frames_sent")} == \
        {k: local[snap][k] for k in ("iommu_events", "frames_sent")}
    # One snapshot job saved the machine; the array's tasks ran each
    # scenario from the staged binary and kernel.
    saved = list((out / "slurm").glob("snapshots-*.out"))
    assert len(saved) == 1 and \
        saved[0].read_text() == f"saved {out}/snapshots/nic-up\n"
    task = (out / "slurm" / "task.sh").read_text()
    assert f"IOGUARD_BUILD={out}/stage" in task
    assert (out / "stage" / "qemu" / "qemu-system-x86_64").read_bytes() == \
        ivm.QEMU.read_bytes()
    assert len(list((out / "slurm").glob("*_*.out"))) == 3
    assert "(5 scenarios in 3 tasks)" in run.stderr
    # The progress bar counted Slurm's tasks as they went.
    # (the snapshot job and 3 tasks; the tasks wait for the snapshot)
    assert "jobs pending 4, running 0; scenarios done 0, failed 0" \
        in run.stderr or "jobs pending 3, running 1" in run.stderr, run.stderr
    assert "] 5/5 " in run.stderr and \
        "scenarios done 5, failed 0" in run.stderr
    assert {r["host"] for r in rows.values()} == {socket.gethostname()}


def test_a_cancelled_slurm_array_resumes(slurm, tmp_path):
    """Two scenarios per task: the array is cancelled (scancel) while the
    first task runs its second scenario: the runner reports the two
    scenarios without a result as errors. Run again, only those two are
    submitted, and the campaign completes."""
    names = ("te-reads-corrupted", "completion-lost", "nic-writes-refused")
    campaign = part_of_smoke(tmp_path, names)
    out = ivm.BUILD / "tests" / "guest" / "campaign-slurm-resume"
    shutil.rmtree(out, ignore_errors=True)
    cmd = CAMPAIGN + [str(campaign), "--slurm", "--max-parallel", "1",
                      "--scenarios-per-task", "2", "--out", str(out)]
    runner = subprocess.Popen(cmd, env=slurm.env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 900
    while not ((out / names[0] / "result.json").exists() and
               (out / names[1] / "qemu.stderr").exists()):
        assert runner.poll() is None and time.time() < deadline
        time.sleep(0.5)
    subprocess.run(["scancel", "--name=ioguard-campaign"], env=slurm.env(),
                   check=True)
    stdout, stderr = runner.communicate(timeout=120)
    assert runner.returncode == 1, stdout + stderr
    rows = results(out)
    assert [rows[n]["outcome"] for n in names] == \
        ["silent-data-corruption", "error", "error"]
    assert "its Slurm task ended without a result" in rows[names[1]]["detail"]
    assert "scenarios done 1, failed 2" in stderr, stderr
    assert json.loads((out / "slurm" / "array-0.json").read_text()) == \
        [list(names[:2]), [names[2]]]

    run = subprocess.run(cmd, env=slurm.env(), capture_output=True,
                         text=True, timeout=1800)
    assert_resumed(run, out, names)
    assert "(2 scenarios in 1 task)" in run.stderr


def test_slurm_errors_name_the_value(slurm, tmp_path):
    """An unknown partition, and a campaign folder the nodes do not see
    (here: a tmpfs mounted over it in the runner's own mount namespace),
    are refused naming the value, before a scenario is submitted."""
    campaign = part_of_smoke(tmp_path, ("te-reads-corrupted",))
    run = subprocess.run(CAMPAIGN + [str(campaign), "--slurm", "--partition",
                                     "gpu", "--out", str(tmp_path / "out")],
                         env=slurm.env(), capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 1
    assert run.stderr.strip() == (
        "fault-campaign: --partition gpu: no such partition in this cluster "
        f"(partitions: {slurm.partition} (the default))"), run.stderr

    private = tmp_path / "private"
    private.mkdir()
    out = private / "out"
    run = subprocess.run(
        ["unshare", "--mount", "sh", "-c",
         'mount -t tmpfs tmpfs "$0" && exec "$@"', str(private),
         *CAMPAIGN, str(campaign), "--slurm", "--out", str(out)],
        env=slurm.env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    assert run.stderr.strip() == (
        f"fault-campaign: --out {out}: a Slurm job could not read "
        f"{out}/slurm/shared-check as this machine wrote it: the campaign "
        "folder must be on storage the nodes share, at the same path"), \
        run.stderr
    assert not (out / "slurm").exists()
    queued = subprocess.run(["squeue", "--noheader"], env=slurm.env(),
                            capture_output=True, text=True).stdout
    assert queued == ""
