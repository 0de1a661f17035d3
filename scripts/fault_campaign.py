"""Fault-injection campaigns (scripts/fault-campaign): scenarios, each a
guest workload and fault rules for ioguard-iommu and ioguard-nic, run each
in its own VM (from a saved snapshot where the scenario names one), and
classified from the guest's log and ioguard's records.

A campaign is a JSON file:

  {"snapshots": {"NAME": {"workload": "...", "at": "MARKER",
                          "disk_mib": 0, "disk": "ahci"}},
   "scenarios": [{"name": "...", "workload": "...", "disk_mib": 0,
                  "disk": "ahci",
                  "iommu_rules": ["site=..."], "nic_rules": ["site=..."],
                  "seed": 0, "snapshot": "NAME", "timeout": 300,
                  "memory": "1G", "expect": "detected-recovered"}]}

workload: the guest's ioguard.* parameters (tests/guest/init), e.g.
"ioguard.nicloop=1500:2000". disk_mib: a disk of seeded bytes that the
guest reads and checksums; disk: on q35's AHCI controller (requester
00:1f.2, the default) or "nvme" (an NVMe controller behind a root port,
01:00.0). A snapshot boots its workload without
rules until MARKER appears in the guest's log (init's nicloop "wait"
prints IOGUARD-WAIT N and waits for a link flap), then stops and saves the
machine; a scenario naming it starts from that state, adds its rules over
QMP and flaps the link to let the guest go on. Rules of other scenarios
go in through the devices' fault-rules property.

The outcome of a scenario is the first of these that holds:
  guest-panicked            a kernel panic, oops or BUG in the guest's log
  guest-hung                the workload did not finish within the timeout
  silent-data-corruption    data came out wrong (a frame's or the disk's
                            checksum, the NIC's test engine reading other
                            bytes than the CPU wrote) and the device's driver
                            reported no error (even if Linux logged the
                            IOMMU's events), or data went missing (lost
                            frames) and nothing reported anything
  detected-device-disabled  the guest reported the error (Linux the IOMMU's
                            events, or the device's driver its errors), and
                            the device was not working at the end: nothing
                            of its last loopback run came through, the disk
                            could not be read or read wrong, or the driver
                            gave up
  detected-recovered        the guest reported the error and the device
                            kept working (some data may have been lost on
                            the way, as the detail says)
  no-effect                 nothing reported, nothing wrong
"""
import concurrent.futures
import csv
import hashlib
import html
import json
import re
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import guest_protocol as gp  # noqa: E402
import ioguard_vm as ivm  # noqa: E402

# QEMU's own QMP library, from the source tree scripts/build-qemu unpacks.
sys.path.insert(0, str(ivm.BUILD / "qemu-src" / "python"))
from qemu.qmp.legacy import QEMUMonitorProtocol  # noqa: E402

OUTCOMES = ["no-effect", "detected-recovered", "detected-device-disabled",
            "silent-data-corruption", "guest-hung", "guest-panicked"]
COLOURS = {"no-effect": "#9e9e9e", "detected-recovered": "#43a047",
           "detected-device-disabled": "#fb8c00",
           "silent-data-corruption": "#8e24aa", "guest-hung": "#e53935",
           "guest-panicked": "#212121"}

# What in a guest's log says that something went wrong: Linux's IOMMU
# driver reporting the IOMMU's events, and the drivers of the devices
# whose data it is reporting their errors. Each: what the table says, and
# the pattern.
IOMMU_REPORTS = {
    "AMD-Vi: Event logged": r"AMD-Vi: Event logged",
    "Completion-Wait loop timed out": r"Completion-Wait loop timed out",
}
DEVICE_REPORTS = {
    "eth0: DMA error": r"eth0: (DMA|device) error",
    "eth0: resetting the device": r"eth0: resetting the device",
    "eth0: TX timeout": r"eth0: TX timeout",
    "libata: host bus error": r"ata\d+\.\d+: irq_stat 0x[0-9a-f]+, host bus error",
    "libata: failed command": r"ata\d+.*(failed command|exception)",
    "NVMe: error status": r"nvme\d+n\d+: .*\(sct 0x[0-9a-f]+ / sc 0x[0-9a-f]+\)",
    "I/O error": r"I/O error",
}
PANICKED = {"panic": r"Kernel panic|Oops|BUG:"}
GAVE_UP = {"the driver gave up":
           r"cannot restart after the reset|the device refused the rings"}

# The disk controllers a scenario can have its disk on
DISKS = {"ahci": ivm.ahci, "nvme": ivm.nvme_behind_root_port}
SCENARIO_KEYS = {"name", "workload", "disk_mib", "disk", "iommu_rules",
                 "nic_rules", "seed", "snapshot", "timeout", "expect",
                 "memory"}
SNAPSHOT_KEYS = {"workload", "at", "disk_mib", "disk", "seed", "memory"}


class CampaignError(Exception):
    """A campaign file that cannot be run, with what is wrong."""


def load(path):
    """The campaign in path, checked: unknown keys, missing names and
    snapshots are refused with what is wrong."""
    try:
        campaign = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CampaignError(f"{path}: {e}") from None
    snapshots = campaign.get("snapshots", {})
    scenarios = campaign.get("scenarios")
    if not isinstance(scenarios, list) or not scenarios:
        raise CampaignError(f"{path}: no \"scenarios\" list")
    for name, snap in snapshots.items():
        bad = set(snap) - SNAPSHOT_KEYS
        if bad or "at" not in snap:
            raise CampaignError(f"snapshot {name}: unknown keys {sorted(bad)}"
                                if bad else f"snapshot {name}: no \"at\"")
        check_machine(f"snapshot {name}", snap)
    names = set()
    for i, s in enumerate(scenarios):
        name = s.get("name")
        if not name or not re.fullmatch(r"[\w.-]+", name) or name in names:
            raise CampaignError(f"scenario {i + 1}: name {name!r} is missing, "
                                "repeated or not [A-Za-z0-9_.-]+")
        names.add(name)
        bad = set(s) - SCENARIO_KEYS
        if bad:
            raise CampaignError(f"scenario {name}: unknown keys {sorted(bad)}"
                                f" (keys: {', '.join(sorted(SCENARIO_KEYS))})")
        if s.get("snapshot") and s["snapshot"] not in snapshots:
            raise CampaignError(f"scenario {name}: no snapshot "
                                f"{s['snapshot']!r}")
        check_machine(f"scenario {name}", s)
        if s.get("expect") and s["expect"] not in OUTCOMES:
            raise CampaignError(f"scenario {name}: expect {s['expect']!r} is "
                                f"none of {', '.join(OUTCOMES)}")
    return snapshots, scenarios


class Machine(ivm.Vm):
    """One QEMU: ioguard-iommu, ioguard-nic on a hub port, optionally a
    disk; QMP through QEMU's own library."""

    die_with_parent = True

    def __init__(self, workdir, workload, disk=None, memory="1G", seed=0,
                 rules=None, incoming=None):
        workdir.mkdir(parents=True, exist_ok=True)
        iommu = [f"fault-seed={seed}"]
        nic = [f"fault-seed={seed}"]
        for device, props in (("iommu", iommu), ("nic", nic)):
            if rules and rules.get(device):
                f = workdir / f"{device}-rules"
                f.write_text("\n".join(rules[device]) + "\n")
                props.append(f"fault-rules={f}")
        extra = ivm.nic("hubport,hubid=0,id=n0", "0x5", nic)
        if incoming:
            extra += ["-incoming", f"file:{incoming}"]
        super().__init__(ivm.ioguard_args(*iommu), [disk] if disk else [],
                         append=workload, memory=memory, workdir=workdir,
                         extra_args=extra)

    def open_qmp(self):
        qmp = QEMUMonitorProtocol(str(self.qmp_path))
        qmp.connect()
        return qmp

    def close_qmp(self):
        try:
            self.qmp.close()
        except EOFError:
            pass        # QEMU closes the connection as it quits

    def wait_for(self, marker, timeout):
        """True once marker is in the guest's log; false if it does not come
        within timeout seconds or the guest panicked."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            log = self.log()
            if marker in log:
                return True
            if any(re.search(p, log) for p in PANICKED.values()):
                return False
            if self.proc.poll() is not None:
                return False
            time.sleep(0.2)
        return False


def check_machine(what, machine):
    """Refuses a disk controller and a memory size the runner cannot give
    the VM."""
    kind = machine.get("disk", "ahci")
    if kind not in DISKS:
        raise CampaignError(f"{what}: disk {kind!r} is none of "
                            f"{', '.join(DISKS)}")
    memory = machine.get("memory", "1G")
    if not re.fullmatch(r"[1-9]\d*[MG]?", str(memory)):
        raise CampaignError(f"{what}: memory {memory!r} is not a size in "
                            "MiB (a number, or with M or G: 512M, 2G)")


def make_disk(workdir, mib, seed):
    """A disk image of seeded bytes (shared by the scenarios that ask for
    the same size) and its sha256."""
    image = workdir / f"disk-{mib}M.img"
    sha_file = image.with_suffix(".sha256")
    if not sha_file.exists():
        sha_file.write_text(ivm.make_disk(image, mib, seed))
    return ivm.ahci(image, sha_file.read_text())


def own_copy(disk, workdir, kind):
    """The disk, copied for one VM (QEMU locks an image against a second
    writer, and VMs run at once), on controller kind."""
    if disk is None:
        return None
    workdir.mkdir(parents=True, exist_ok=True)
    image = workdir / "disk.img"
    shutil.copyfile(disk.image, image)
    return DISKS[kind](image, disk.sha256)


def key_of(*parts):
    """What a result was made from (a scenario, its snapshot): a result
    whose key differs from the campaign's is not reused."""
    text = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def take_snapshot(outdir, name, snap, disks):
    """Boots the snapshot's workload and saves the machine at its marker;
    a snapshot saved whole earlier for the same definition is reused."""
    path = snapshot_path(outdir, name)
    if snapshot_saved(outdir, name, snap):
        return path
    vmdir = outdir / "snapshots" / f"{name}-vm"
    partial = path.with_suffix(".partial")
    m = Machine(vmdir, snap.get("workload", ""),
                own_copy(disks.get(snap.get("disk_mib", 0)), vmdir,
                         snap.get("disk", "ahci")),
                snap.get("memory", "1G"), snap.get("seed", 0))
    try:
        m.start()
        if not m.wait_for(snap["at"], 600):
            raise RuntimeError(f"snapshot {name}: {snap['at']!r} never came "
                               f"(see {m.serial})")
        m.save_to(partial)
    finally:
        m.stop()
    partial.rename(path)
    path.with_suffix(".key").write_text(key_of(snap))
    return path


def snapshot_path(outdir, name):
    return outdir / "snapshots" / name


def snapshot_saved(outdir, name, snap):
    """Whether the snapshot name of definition snap was saved whole."""
    path = snapshot_path(outdir, name)
    key_file = path.with_suffix(".key")
    return path.exists() and key_file.exists() and \
        key_file.read_text() == key_of(snap)


def classify(log, done, disk):
    """(outcome, detail) of a scenario from its guest's log."""
    def evidence(reports):
        return [name for name, p in reports.items() if re.search(p, log)]

    iommu_saw, device_saw = evidence(IOMMU_REPORTS), evidence(DEVICE_REPORTS)
    if evidence(PANICKED):
        return "guest-panicked", "panic in the guest's log"
    if not done:
        return "guest-hung", "the workload did not finish"
    guest = gp.parse_console_log(log)
    loops = guest.nic_loops_of("eth0")
    lost = sum(r.lost for r in loops)
    damaged = sum(r.corrupt + r.duplicate for r in loops) + \
        sum(r.lost == 0 and r.sha256 != r.sent_sha256 for r in loops)
    disk_read = disk is not None and disk.guest_name in guest.checksums
    wrong = []                  # data that came out other than it went in
    if damaged:
        wrong.append(f"{damaged} frame(s) damaged or repeated")
    if any(t.kind == "sg" and t.fields.get("crc_ok") == "0"
           for t in guest.dma_tests):
        wrong.append("the NIC read other bytes than the CPU wrote")
    if disk_read and guest.checksums[disk.guest_name] != disk.sha256:
        wrong.append("the disk read back other bytes than it holds")
    missing = []                # data that did not come out at all
    if lost:
        missing.append(f"{lost} frame(s) lost")
    if disk is not None and not disk_read:
        missing.append("the disk could not be read")

    if wrong and not device_saw:
        # The I/O succeeded with the wrong data: whatever the IOMMU logged,
        # the program that read it was not told.
        seen = f" (the IOMMU reported: {', '.join(iommu_saw)})" \
            if iommu_saw else ""
        return "silent-data-corruption", "; ".join(wrong + missing) + seen
    if iommu_saw or device_saw:
        said = ", ".join(iommu_saw + device_saw)
        last = loops[-1] if loops else None
        if evidence(GAVE_UP) or wrong or (disk is not None and not disk_read) \
                or (last is not None and last.received == 0):
            return ("detected-device-disabled",
                    f"{said}; {'; '.join(wrong + missing) or 'the driver gave up'}")
        return "detected-recovered", said + (
            f"; {'; '.join(missing)} on the way" if missing else "")
    if missing:
        return "silent-data-corruption", "; ".join(missing) + \
            ", nothing reported"
    return "no-effect", "nothing reported, data intact"


def run_scenario(outdir, s, snapshots, snapshot_files, disks):
    """Runs one scenario; returns its row of the table."""
    start = time.time()
    snap = snapshots.get(s.get("snapshot")) if s.get("snapshot") else None
    machine_of = snap or s
    disk = own_copy(disks.get(machine_of.get("disk_mib", 0)),
                    outdir / s["name"], machine_of.get("disk", "ahci"))
    rules = {"iommu": s.get("iommu_rules", []), "nic": s.get("nic_rules", [])}
    m = Machine(outdir / s["name"], machine_of.get("workload", ""), disk,
                machine_of.get("memory", "1G"), machine_of.get("seed", 0),
                None if snap else rules,
                snapshot_files[s["snapshot"]] if snap else None)
    fired = records = 0
    try:
        m.start()
        if snap:
            m.wait_migration()
            for device, name in (("iommu", "ioguard-iommu"),
                                 ("nic", "ioguard-nic")):
                for rule in rules[device]:
                    m.cmd("ioguard-fault-add", device=name, rule=rule)
            m.cmd("cont")
            m.flap_link()
        done = m.wait_for("IOGUARD-DONE", s.get("timeout", 300))
        for info in m.cmd("query-ioguard-fault-rules"):
            fired += sum(r["fired"] for r in info["rules"])
        for iommu in m.cmd("query-ioguard-faults"):
            records += len(iommu["faults"])
    finally:
        m.stop()
    log = m.log()
    outcome, detail = classify(log, done, disk)
    loops = gp.parse_console_log(log).nic_loops_of("eth0")
    return {
        "scenario": s["name"],
        "outcome": outcome,
        "expected": s.get("expect", ""),
        "faults_fired": fired,
        "iommu_events": records,
        "frames_sent": sum(r.sent for r in loops),
        "frames_lost": sum(r.lost for r in loops),
        "seconds": round(time.time() - start, 1),
        "host": socket.gethostname(),
        "detail": detail,
        "log": str(m.serial),
    }


class Progress:
    """A one-line progress bar on stderr: done/total, time, and what runs
    (the local pool) or how many tasks wait and run (Slurm)."""

    def __init__(self, total, done=0):
        self.total, self.done, self.running = total, done, []
        self.start = time.time()
        self.lock = threading.Lock()
        self.tty = sys.stderr.isatty()

    def update(self, started=None, finished=None, outcome=None):
        with self.lock:
            if started:
                self.running.append(started)
            if finished:
                self.running.remove(finished)
                self.done += 1
            if finished:
                self.show(f"{finished}: {outcome}")
            else:
                self.show(f"running {', '.join(self.running)}"
                          if self.running else "")

    def show(self, what):
        width = 30
        filled = width * self.done // self.total
        line = (f"[{'#' * filled}{'.' * (width - filled)}] "
                f"{self.done}/{self.total} "
                f"{int(time.time() - self.start)}s")
        if what:
            line += f"  {what}"
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
            if self.done == self.total:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


class Results:
    """Each scenario's result, written into its folder as it finishes
    (result.json), and the number of times it was started (attempts), so
    that running the campaign into the same folder again runs only what
    has no result: a killed runner loses only what was running."""

    def __init__(self, outdir, snapshots):
        self.outdir, self.snapshots = outdir, snapshots

    def key(self, s):
        return key_of(s, self.snapshots.get(s.get("snapshot")))

    def earlier(self, s):
        """The scenario's result from an earlier run of the same
        definition, if it has one that is not an error."""
        row = self.current(s)
        if not row or row.get("outcome") == "error":
            return None
        return dict(row, reused="yes")

    def started(self, s):
        """Counts one more start of s; returns the count."""
        n = self.attempts(s) + 1
        counter = self.outdir / s["name"] / "attempts"
        counter.parent.mkdir(parents=True, exist_ok=True)
        counter.write_text(str(n))
        return n

    def current(self, s):
        """The result s's last run into the folder left (an error too), if
        it was of the same definition."""
        try:
            row = json.loads((self.outdir / s["name"] /
                              "result.json").read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return row if row.get("key") == self.key(s) else None

    def forget(self, s):
        """Removes s's result (one that is to be made again)."""
        (self.outdir / s["name"] / "result.json").unlink(missing_ok=True)

    def attempts(self, s):
        try:
            return int((self.outdir / s["name"] / "attempts").read_text())
        except (OSError, ValueError):
            return 0

    def finished(self, s, row):
        row = dict(row, key=self.key(s), reused="no")
        result = self.outdir / s["name"] / "result.json"
        result.parent.mkdir(parents=True, exist_ok=True)
        partial = result.with_suffix(".partial")
        partial.write_text(json.dumps(row))
        partial.rename(result)
        return row


class Campaign:
    """A campaign to run into a folder: its snapshots and scenarios, the
    results an earlier run there left, what is still to run, and the disk
    images the scenarios read (made once, shared). only: the names of the
    scenarios to run, whatever their results (a Slurm task's; it reads no
    other scenario's result)."""

    def __init__(self, path, outdir, only=None):
        self.path, self.outdir = Path(path), Path(outdir)
        self.snapshots, self.scenarios = load(path)
        self.outdir.mkdir(parents=True, exist_ok=True)
        self.results = Results(self.outdir, self.snapshots)
        if only is None:
            self.earlier = {s["name"]: self.results.earlier(s)
                            for s in self.scenarios}
            self.todo = [s for s in self.scenarios
                         if not self.earlier[s["name"]]]
        else:
            self.earlier = {}
            self.todo = [s for s in self.scenarios if s["name"] in only]
        self.disks = self.make_disks(self.todo)

    def machine_of(self, s):
        """What s's VM is made from: its snapshot's definition or its own."""
        return self.snapshots[s["snapshot"]] if s.get("snapshot") else s

    def make_disks(self, scenarios):
        sizes = {self.machine_of(s).get("disk_mib", 0) for s in scenarios}
        return {mib: make_disk(self.outdir, mib, seed=mib)
                for mib in sizes if mib}

    def snapshots_needed(self):
        return [name for name in self.snapshots
                if any(s.get("snapshot") == name for s in self.todo)]

    def run_one(self, s):
        """Runs s (its snapshot saved already), counting the start, and
        keeps its result; returns its row. The local pool and a Slurm
        array task both run a scenario through this."""
        attempts = self.results.started(s)
        try:
            row = run_scenario(self.outdir, s, self.snapshots,
                               {n: snapshot_path(self.outdir, n)
                                for n in self.snapshots}, self.disks)
        except Exception as e:     # a scenario that could not run at all
            row = {"scenario": s["name"], "outcome": "error",
                   "expected": s.get("expect", ""),
                   "host": socket.gethostname(),
                   "detail": f"{type(e).__name__}: {e}"}
        return self.results.finished(s, dict(row, attempts=attempts))

    def write_results(self, ran):
        """results.csv and results.html of every scenario: those run now
        (ran: rows by name) and those reused; returns the rows."""
        rows = [self.earlier.get(s["name"]) or ran[s["name"]]
                for s in self.scenarios]
        write_csv(self.outdir / "results.csv", rows)
        write_html(self.outdir / "results.html", self.path, rows)
        return rows


def run(path, outdir, jobs):
    """Runs the campaign in path into outdir on this machine, jobs VMs at
    once, or what of it has no result there yet; writes results.csv and
    results.html into outdir and returns the rows."""
    c = Campaign(path, outdir)
    progress = Progress(len(c.scenarios),
                        done=len(c.scenarios) - len(c.todo))
    for name in c.snapshots_needed():
        take_snapshot(c.outdir, name, c.snapshots[name], c.disks)

    def one(s):
        progress.update(started=s["name"])
        row = c.run_one(s)
        progress.update(finished=s["name"], outcome=row["outcome"])
        return row

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        ran = {r["scenario"]: r for r in pool.map(one, c.todo)}
    return c.write_results(ran)


# attempts: how many times the scenario was started (more than 1: its
# earlier run died with its runner or task, or could not run); reused: its
# result is from an earlier run of the campaign into the same folder; host:
# the machine it ran on (a Slurm node, or this one).
FIELDS = ["scenario", "outcome", "expected", "faults_fired", "iommu_events",
          "frames_sent", "frames_lost", "seconds", "attempts", "reused",
          "host", "detail", "log"]


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in FIELDS})


def bar_chart(title, bars, colour_of):
    """An inline SVG of horizontal bars: (label, value) pairs."""
    height = 24 * len(bars) + 30
    top = max([v for _, v in bars] + [1])
    out = [f'<svg width="640" height="{height}" role="img" '
           f'aria-label="{html.escape(title)}">',
           f'<text x="0" y="16" font-weight="bold">{html.escape(title)}'
           '</text>']
    for i, (label, value) in enumerate(bars):
        y = 30 + 24 * i
        w = int(380 * value / top)
        out.append(f'<text x="0" y="{y + 15}">{html.escape(label)}</text>'
                   f'<rect x="220" y="{y}" width="{w}" height="18" '
                   f'fill="{colour_of(label)}"/>'
                   f'<text x="{226 + w}" y="{y + 15}">{value}</text>')
    out.append("</svg>")
    return "\n".join(out)


def write_html(path, campaign, rows):
    counts = [(o, sum(r["outcome"] == o for r in rows))
              for o in OUTCOMES + ["error"]]
    counts = [(o, n) for o, n in counts if n or o != "error"]
    outcome_of = {r["scenario"]: r["outcome"] for r in rows}
    table = ["<table><tr>" + "".join(f"<th>{f}</th>" for f in FIELDS[:-1]) +
             "</tr>"]
    for r in rows:
        colour = COLOURS.get(r["outcome"], "#ffffff")
        cells = []
        for f in FIELDS[:-1]:
            style = (f' style="background:{colour};color:white"'
                     if f == "outcome" else "")
            cells.append(f"<td{style}>{html.escape(str(r.get(f, '')))}</td>")
        table.append("<tr>" + "".join(cells) + "</tr>")
    table.append("</table>")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>ioguard fault campaign</title>
<style>body{{font-family:sans-serif;margin:2em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;
text-align:left;font-size:90%}}svg text{{font-size:13px}}</style></head>
<body><h1>ioguard fault campaign</h1>
<p>{html.escape(str(campaign))}: {len(rows)} scenarios,
{time.strftime('%Y-%m-%d %H:%M:%S')}</p>
{bar_chart("Outcomes", counts, lambda o: COLOURS.get(o, "#e0e0e0"))}
{bar_chart("Faults fired per scenario",
           [(r["scenario"], r.get("faults_fired", 0)) for r in rows],
           lambda s: COLOURS.get(outcome_of[s], "#e0e0e0"))}
{"".join(table)}
</body></html>
"""
    Path(path).write_text(page)
