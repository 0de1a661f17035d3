"""The fault-injection campaign runner end to end (scripts/fault-campaign):
tests/campaigns/smoke.json's five scenarios, one from a snapshot, two VMs
at once, each classified from its guest's log and ioguard's records and
checked against what the scenario expects; the CSV and the HTML page with
its plots are written. A campaign whose runner is killed resumes where it
stopped."""

import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import ioguard_vm as ivm  # noqa: E402

OUT = ivm.BUILD / "tests" / "guest" / "campaign"


def test_smoke_campaign():
    run = subprocess.run([sys.executable, str(ROOT / "scripts" /
                                              "fault-campaign"),
                          str(ROOT / "tests" / "campaigns" / "smoke.json"),
                          "--jobs", "2", "--out", str(OUT)],
                         capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = list(csv.DictReader(open(OUT / "results.csv")))
    outcome = {r["scenario"]: r["outcome"] for r in rows}
    assert outcome == {
        "baseline": "no-effect",
        "nic-writes-refused": "detected-recovered",
        "te-reads-corrupted": "silent-data-corruption",
        "completion-lost": "detected-recovered",
        "from-snapshot-nic-dma-error": "detected-recovered",
    }, run.stdout
    fired = {r["scenario"]: int(r["faults_fired"]) for r in rows}
    assert fired["baseline"] == 0
    assert all(fired[s] == 1 for s in fired if s != "baseline"), fired
    # Only the IOMMU's own faults make events in its records.
    events = {r["scenario"]: int(r["iommu_events"]) for r in rows}
    assert events["nic-writes-refused"] >= 1 and events["baseline"] == 0
    assert events["from-snapshot-nic-dma-error"] == 0
    page = (OUT / "results.html").read_text()
    assert page.count("<svg") == 2 and "silent-data-corruption" in page
    # The progress bar counted every scenario.
    assert "5/5" in run.stderr


def test_campaign_errors_name_the_value(tmp_path):
    """A campaign file that cannot run is refused before any VM starts,
    with the scenario and the value that is wrong."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"scenarios": [{"name": "sata-disk", "disk_mib": 4, '
                   '"disk": "sata"}]}')
    run = subprocess.run([sys.executable, str(ROOT / "scripts" /
                                              "fault-campaign"), str(bad),
                          "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.strip() == ("fault-campaign: scenario sata-disk: disk "
                                  "'sata' is none of ahci, nvme"), run.stderr


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
    smoke = json.loads((ROOT / "tests" / "campaigns" / "smoke.json")
                       .read_text())["scenarios"]
    keep = ("te-reads-corrupted", "completion-lost", "nic-writes-refused")
    campaign = tmp_path / "resume.json"
    campaign.write_text(json.dumps(
        {"scenarios": [s for name in keep for s in smoke
                       if s["name"] == name]}))
    out = ivm.BUILD / "tests" / "guest" / "campaign-resume"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, str(ROOT / "scripts" / "fault-campaign"),
           str(campaign), "--jobs", "1", "--out", str(out)]
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
    rows = {r["scenario"]: r for r in csv.DictReader(open(out /
                                                          "results.csv"))}
    assert list(rows) == list(keep)
    assert {n: (r["reused"], r["attempts"]) for n, r in rows.items()} == {
        keep[0]: ("yes", "1"), keep[1]: ("no", "2"), keep[2]: ("no", "1")}
    expected = {s["name"]: s["expect"] for s in smoke}
    assert all(r["outcome"] == expected[n] for n, r in rows.items()), rows
    assert f"from an earlier run into {out}: {keep[0]}" in run.stdout
    assert f"run again (an earlier start left no result): {keep[1]}" \
        in run.stdout
    # The progress bar started from the result it had.
    assert "] 1/3 " in run.stderr and "] 0/3 " not in run.stderr, run.stderr
