"""The fault-injection campaign runner end to end (scripts/fault-campaign):
tests/campaigns/smoke.json's five scenarios, one from a snapshot, two VMs
at once, each classified from its guest's log and ioguard's records and
checked against what the scenario expects; the CSV and the HTML page with
its plots are written."""

import csv
import subprocess
import sys
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
