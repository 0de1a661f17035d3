"""Hostile-guest runs: one VM per seed, whose guest writes seeded random
values into every register and table of ioguard-iommu and ioguard-nic,
and issues disk commands to an AHCI and an NVMe controller behind the
IOMMU (tests/guest/hostile.cc), while the host checks that QEMU stays
healthy.

A seed passes when, for its whole run:
  - QEMU answers every QMP command (polled every 0.1 s, the IOMMU's
    statistics every 1 s) within a second;
  - QEMU does not crash (no signal, no non-zero exit);
  - QEMU logs what it refused (LOG_GUEST_ERROR lines from the devices);
  - QEMU stops on SIGTERM within 10 seconds at the end.
What became of the guest is reported too, and is the guest's business,
not QEMU's: it runs its OPS operations to the end ("done") or wrecks itself
on the way. With the IOMMU turned off or a device table entry that lets DMA
through untranslated, the NIC's DMA reaches the guest's own memory at
whatever address a random word in a descriptor gives it; the kernel then
faults ("guest reset", a triple fault) or panics, or it loses the
interrupts it lives on ("guest stopped": no output for STALL_S seconds).
The run ends there; it still counts when QEMU stayed healthy throughout.

Used by scripts/hostile-guest and tests/guest/test_hostile.py.
"""

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

import guest_protocol as gp
import ioguard_vm as ivm

QMP_DEADLINE_S = 1.0
STALL_S = 20
# Before the guest's first line: SeaBIOS takes half a minute to get past
# q35's AHCI controller with a disk under TCG.
FIRMWARE_S = 90
NIC_ADDR = "0x5"             # hostile.cc's kNicDevid, 00:05.0
# Disks on q35's AHCI controller and on an NVMe controller where
# hostile.cc's kNvmeDevid says; they discard what is written and read as
# zeros. (SeaBIOS takes a minute to get past a second AHCI controller.)
DISKS = ["-drive", "if=none,id=hd0,format=raw,file=null-co://,"
                   "file.read-zeroes=on",
         "-device", "ide-hd,drive=hd0,bus=ide.0",
         "-drive", "if=none,id=nv0,format=raw,file=null-co://,"
                   "file.read-zeroes=on",
         "-device", "nvme,drive=nv0,serial=hostile,addr=0x6"]
DISK_REQUESTERS = ("00:06.0", "00:1f.2")


@dataclass
class Result:
    seed: int
    ops_wanted: int
    ops_done: int = 0
    guest: str = "?"                 # done, guest stopped, ...
    qmp_polls: int = 0
    qmp_max_ms: float = 0.0
    guest_errors: int = 0            # LOG_GUEST_ERROR lines from ioguard
    disk_faults: dict = field(default_factory=dict)   # requester: refused
    exit: str = "?"                  # how QEMU ended
    seconds: float = 0.0
    failures: list = field(default_factory=list)
    workdir: str = ""

    @property
    def passed(self):
        return not self.failures


class QmpWatch(threading.Thread):
    """Polls QMP until stopped and keeps the slowest answer."""

    def __init__(self, vm):
        super().__init__(daemon=True)
        self.vm = vm
        self.stop_event = threading.Event()
        self.polls = 0
        self.max_s = 0.0
        self.error = None
        self.status = "running"

    def run(self):
        self.vm.qmp.sock.settimeout(10)
        while not self.stop_event.is_set():
            start = time.monotonic()
            try:
                if self.polls % 10 == 0:
                    self.vm.stats()
                else:
                    self.status = self.vm.cmd("query-status")["status"]
            except Exception as e:              # closed, timed out, refused
                stopping = self.stop_event.is_set()
                if self.vm.proc.poll() is None and not stopping:
                    self.error = f"QMP failed while QEMU ran: {e!r}"
                return
            took = time.monotonic() - start
            self.polls += 1
            self.max_s = max(self.max_s, took)
            self.stop_event.wait(0.1)


def guest_error_lines(path):
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return 0
    return sum(1 for line in text.splitlines() if "ioguard" in line)


def run_seed(seed, ops, workdir, timeout=600):
    """Runs one seed in its own VM; returns a Result."""
    workdir = os.path.join(str(workdir), f"seed-{seed}")
    errors_log = os.path.join(workdir, "guest-errors.log")
    # ATS on both sides, so that the NIC's own translation cache and the
    # device-IOTLB invalidations are attacked too; the NIC's PASIDs and
    # page requests (pri=on) go to the IOMMU's guest tables and PPR log.
    vm = ivm.Vm(ivm.ioguard_args("device-iotlb=on", "guest-translation=on"), [],
                # devkmsg=on: progress lines go to the kernel's log, which
                # would otherwise let through 10 per 5 seconds
                append=f"{gp.kernel_params(hostile=(seed, ops))} "
                       "amd_iommu=off iomem=relaxed printk.devkmsg=on",
                memory="512M", smp=1, workdir=workdir,
                extra_args=[*ivm.nic("user,id=n0", NIC_ADDR,
                                     ("ats=on", "pri=on")),
                            *DISKS,
                            "-d", "guest_errors", "-D", errors_log])
    result = Result(seed, ops, workdir=workdir)
    start = time.monotonic()
    vm.start()
    try:
        watch = QmpWatch(vm)
        watch.start()
        deadline = start + timeout
        last_log, last_change = "", start
        while time.monotonic() < deadline and vm.proc.poll() is None:
            log = vm.log()
            if "IOGUARD-HOSTILE-EXIT" in log or "Kernel panic" in log:
                break
            if (watch.error or not watch.is_alive()
                    or watch.status != "running"):
                break
            if log != last_log:
                last_log, last_change = log, time.monotonic()
            elif time.monotonic() - last_change > (STALL_S if log
                                                    else FIRMWARE_S):
                break
            time.sleep(0.2)
        watch.stop_event.set()
        watch.join(15)
        result.seconds = time.monotonic() - start
        result.qmp_polls, result.qmp_max_ms = watch.polls, watch.max_s * 1000

        log = vm.log()
        guest = gp.parse_console_log(log)
        progress = guest.hostile_progress
        result.ops_done = progress[-1].ops if progress else 0
        if guest.hostile_done:
            result.guest = "done"
        elif "Kernel panic" in log:
            result.guest = "guest panicked"
        elif guest.hostile_exit is not None:
            result.guest = "program failed"
            result.failures.append("the hostile program failed: see "
                                   f"{vm.serial}")
        elif watch.status == "shutdown":          # -no-reboot: a reset stops
            result.guest = "guest reset"
        elif watch.status != "running":
            result.guest = f"guest {watch.status}"
        else:
            result.guest = "guest stopped"

        code = vm.proc.poll()
        if code is None and not watch.error:
            # How much of the disk controllers' DMA the IOMMU refused
            try:
                stats = vm.stats()
                result.disk_faults = {
                    r["requester"]: r["faults"] for r in stats["requesters"]
                    if r["requester"] in DISK_REQUESTERS}
            except Exception as e:              # QEMU went away meanwhile
                result.failures.append(f"query-ioguard-stats: {e!r}")
        if code is None:
            vm.proc.send_signal(signal.SIGTERM)
            try:
                code = vm.proc.wait(10)
                result.exit = "SIGTERM"
            except subprocess.TimeoutExpired:
                result.failures.append("QEMU ignored SIGTERM for 10 s")
                vm.proc.kill()
                code = vm.proc.wait()
                result.exit = "killed"
        else:
            result.exit = f"exited {code}"
        vm.qmp.close()
        if code < 0 and result.exit != "SIGTERM":
            result.failures.append(f"QEMU died of signal {-code}")
        elif code != 0:
            result.failures.append(f"QEMU exited with {code}")
        if watch.error:
            result.failures.append(watch.error)
        if result.qmp_max_ms > QMP_DEADLINE_S * 1000:
            result.failures.append(
                f"QMP took {result.qmp_max_ms:.0f} ms to answer")
        result.guest_errors = guest_error_lines(
            vm.workdir / "guest-errors.log")
        if result.guest_errors == 0:
            result.failures.append("QEMU logged no refused guest access")
        stderr = vm.stderr.read_text(errors="replace")
        for bad in ("Assertion", "AddressSanitizer", "runtime error",
                    "Aborted"):
            if bad in stderr:
                result.failures.append(f"QEMU's stderr says {bad!r}")
        return result
    finally:
        if vm.proc.poll() is None:     # an exception above: no stray QEMU
            vm.proc.kill()
            vm.proc.wait()


def format_table(results):
    rows = [f"{'seed':>6} {'ops':>13} {'guest':<16} {'QMP polls':>9} "
            f"{'slowest':>9} {'refusals':>9} {'disk DMA refused':>16} "
            f"{'QEMU':<10} {'s':>5} verdict"]
    for r in results:
        verdict = "pass" if r.passed else "FAIL: " + "; ".join(r.failures)
        disks = "/".join(str(r.disk_faults.get(q, 0))
                         for q in DISK_REQUESTERS)
        rows.append(f"{r.seed:>6} {r.ops_done:>6}/{r.ops_wanted:<6} "
                    f"{r.guest:<16} {r.qmp_polls:>9} "
                    f"{r.qmp_max_ms:>7.0f}ms {r.guest_errors:>9} "
                    f"{disks:>16} {r.exit:<10} {r.seconds:>5.0f} {verdict}")
    return "\n".join(rows)
