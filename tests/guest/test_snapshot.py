"""Snapshots under load (docs/ioguard-faults.rst): a guest behind
ioguard-iommu, reading a disk and then sending frames round ioguard-nic's
loopback, is migrated to a file twice, each time into a new QEMU, once
while it reads the disk and once in the middle of its frames; and saved
and loaded back (savevm, loadvm) in the middle of its frames. The disk's
checksum, the frames' checksums and the counters must come out as if
nothing had happened: nothing lost, nothing duplicated. QEMU's own
amd-iommu refuses migration; ioguard must not."""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import guest_protocol as gp  # noqa: E402
import ioguard_vm as ivm  # noqa: E402

WORK = ivm.BUILD / "tests" / "guest" / "snapshot"


def resume(vm):
    """Lets a machine started with -incoming run once its state is in (it
    was saved stopped, so it does not start by itself)."""
    vm.wait_migration()
    vm.cmd("cont")


def test_migration_under_disk_and_nic_load():
    WORK.mkdir(parents=True, exist_ok=True)
    image = WORK / "disk.img"
    disk = ivm.ahci(image, ivm.make_disk(image, 64, seed=31))

    def machine(part, state=None):
        """The same machine each time; from the saved state, if given."""
        incoming = ["-incoming", f"file:{state}"] if state else []
        return ivm.Vm(ivm.ioguard_args(), [disk], workdir=WORK / part,
                      append=gp.kernel_params(nicloop="1500:20000"),
                      extra_args=ivm.nic("hubport,hubid=0,id=n0", "0x5") +
                      incoming)

    first, second = WORK / "while-reading", WORK / "while-sending"
    a = machine("a")
    with a:
        assert a.wait_for("IOGUARD-DOMAIN-TYPES", timeout=600), a.serial
        time.sleep(0.5)                 # into the disk's reads
        assert "IOGUARD-CHECKSUM" not in a.log(), "the disk was read already"
        a.save_to(first)
    b = machine("b", first)
    with b:
        resume(b)
        assert b.wait_for("internal loopback on", timeout=600), b.serial
        time.sleep(1)                   # into the frames
        assert "IOGUARD-NICLOOP" not in b.log(), "the frames were all sent"
        b.save_to(second)
    c = machine("c", second)
    with c:
        resume(c)
        assert c.wait_for("IOGUARD-DONE", timeout=900), c.serial
        stats = c.stats()
    log = a.log() + b.log() + c.log()
    guest = gp.parse_console_log(log)

    # The disk read across the first migration: every byte, once.
    assert gp.parse_console_log(b.log()).checksums == {"sda": disk.sha256}
    assert "IOGUARD-NICLOOP" in c.log()
    # The frames across the second: all there, intact, none twice.
    [run] = guest.nic_loops_of("eth0", 1500)
    assert run.sent == run.received == 20000, run
    assert run.lost == run.corrupt == run.duplicate == 0, run
    assert run.sha256 == run.sent_sha256, run
    # The device's counters (its registers, migrated) agree with the
    # driver's (guest memory). A few frames went out before loopback.
    s = guest.nic_stats_of("eth0")
    assert s["device_tx_packets"] == s["tx_packets"] >= 20000
    assert s["device_rx_packets"] == s["rx_packets"] >= 20000
    assert s["dma_errors"] == s["device_dma_errors"] == 0
    for bad in ("Event logged", "DMA error", "Completion-Wait loop timed out",
                "resetting the device"):
        assert bad not in log, bad
    # ioguard translated after the restore: its DMA went through the tables.
    assert stats["translations"] > 0 and stats["faults"] == 0


def run_job(vm, command, **args):
    """Runs a QMP job command and waits for it to conclude successfully."""
    vm.cmd(command, **args)
    deadline = time.time() + 300
    while True:
        [job] = [j for j in vm.cmd("query-jobs") if j["id"] == args["job-id"]]
        if job["status"] == "concluded":
            assert "error" not in job, job
            vm.cmd("job-dismiss", id=args["job-id"])
            return
        assert time.time() < deadline, job
        time.sleep(0.1)


def test_savevm_loadvm_under_nic_load():
    """savevm and loadvm (QMP snapshot-save and snapshot-load, into a qcow2
    image made through QMP): the guest saved in the middle of its frames
    runs to the end, is loaded back to the middle and runs to the end again,
    both times with every frame once and intact."""
    WORK.mkdir(parents=True, exist_ok=True)
    image = WORK / "vmstate.qcow2"
    image.write_bytes(b"")
    vm = ivm.Vm(ivm.ioguard_args(), [], workdir=WORK / "savevm",
                append=gp.kernel_params(nicloop="1500:20000"),
                extra_args=ivm.nic("hubport,hubid=0,id=n0", "0x5") +
                ["-blockdev", f"driver=file,filename={image},node-name=file0"])
    snapshot = {"tag": "mid", "vmstate": "state0", "devices": ["state0"]}
    with vm:
        run_job(vm, "blockdev-create", **{"job-id": "create", "options": {
            "driver": "qcow2", "file": "file0", "size": 64 << 20}})
        vm.cmd("blockdev-add", driver="qcow2", **{"node-name": "state0",
                                                  "file": "file0"})
        assert vm.wait_for("internal loopback on", timeout=600), vm.serial
        time.sleep(0.5)                 # into the frames
        run_job(vm, "snapshot-save", **{"job-id": "save", **snapshot})
        assert vm.wait_for("IOGUARD-DONE", timeout=900), vm.serial
        run_job(vm, "snapshot-load", **{"job-id": "load", **snapshot})
        vm.cmd("cont")
        deadline = time.time() + 900
        while vm.log().count("IOGUARD-DONE") < 2:
            assert time.time() < deadline, "no second run after loadvm"
            time.sleep(0.2)
    log = vm.log()
    runs = gp.parse_console_log(log).nic_loops_of("eth0", 1500)
    assert len(runs) == 2, runs
    for run in runs:
        assert run.sent == run.received == 20000, run
        assert run.lost == run.corrupt == run.duplicate == 0, run
        assert run.sha256 == run.sent_sha256, run
    assert runs[0].sha256 == runs[1].sha256     # the same frames again
    for bad in ("Event logged", "DMA error", "resetting the device"):
        assert bad not in log, bad
