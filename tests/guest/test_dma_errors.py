"""Guest tests of refused disk DMA (docs/ioguard-faults.rst): a fault rule
refuses one DMA write of the disk controller (the data of a disk read)
while Debian's 6.12 reads the disk, and Linux's own log says what the
controller reported.

- NVMe: the command completes with Data Transfer Error; the block layer
  fails that request (a readahead: no retry) with an I/O error for the
  same sector; the page cache reads those pages again, so the checksum of
  the whole disk is right, and so is a second read past the page cache.
- AHCI: PxIS.HBFS ("host bus error"); libata freezes the port, hard-resets
  the link and fails the readahead with an I/O error for the sector of the
  failed command. A second refusal during a read past the page cache
  (O_DIRECT, which libata retries) costs a reset and no I/O error.
- virtio-blk: the device marks itself broken (NEEDS_RESET); Linux's driver
  does not reset it, and the read never completes.
Each time the IOMMU logged exactly the refusals the rules fired.

Most rules refuse data: the controllers also write their own queues
(NVMe's completion queues, AHCI's received FISes, virtio's used rings), in
between the data as timing has it, and a refused completion has another
outcome, tested on its own: an NVMe controller's fatal status, a broken
virtio device."""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import guest_protocol as gp  # noqa: E402
import hostile_guest as hg  # noqa: E402
import ioguard_vm as ivm  # noqa: E402

WORK = ivm.BUILD / "tests" / "guest"


def refuse_write(vm, requester, first, last, nth):
    """Adds a rule that refuses requester's nth DMA write into IOVAs
    first..last from now on."""
    vm.cmd("ioguard-fault-add", device="iommu",
           rule=f"site=translate,requester={requester},"
                f"range={first:#x}-{last:#x},access=write,when=nth:{nth},"
                "action=fault")


def refuse_data_write(vm, requester, nth):
    """Adds a rule that refuses requester's nth DMA write of data from now
    on. Called while the guest waits after its drivers probed (init's
    IOGUARD-PAUSE): all the device has mapped then is its queues, which
    Linux allocated first, at the top of the IOVA space, and which stay
    mapped; the rule counts only writes below them."""
    vm.cmd("stop")
    mappings = vm.cmd("query-ioguard-mappings", requester=requester)
    assert mappings["ranges"] and not mappings["truncated"], mappings
    queues = min(r["iova"] for r in mappings["ranges"])
    refuse_write(vm, requester, 0, queues - 1, nth)
    vm.cmd("cont")


def page_faults(log, bdf):
    """The IOVAs of Linux's IO_PAGE_FAULT lines for device bdf."""
    return re.findall(rf"{bdf}: AMD-Vi: Event logged \[IO_PAGE_FAULT "
                      r"domain=0x[0-9a-f]+ address=0x([0-9a-f]+)", log)


def io_errors(log, disk):
    """The sectors of the block layer's I/O error lines for disk."""
    return [int(s) for s in re.findall(
        rf"I/O error, dev {disk}, sector (\d+) op 0x0:\(READ\)", log)]


def injected(vm):
    return [r for r in vm.cmd("query-ioguard-faults")[0]["faults"]
            if r["reason"] == "injected"]


def run(name, disk, requester, driver):
    """Boots with one of requester's DMA writes of data refused while the
    disk is read through the page cache (the 300th: well into the 16 MiB,
    which take some 2700), and a second one while it is read again past
    it; Linux logs both refusals as IO_PAGE_FAULTs of the device (driver
    and PCI address as its log names it). Returns the guest's log."""
    vm = ivm.Vm(ivm.ioguard_args(), [disk], workdir=WORK / name,
                append=gp.kernel_params(pause=5, settle=5, recheck=True))
    with vm:
        assert vm.wait_for("IOGUARD-PAUSE", timeout=600), vm.serial
        refuse_data_write(vm, requester, 300)
        assert vm.wait_for("IOGUARD-SETTLE", timeout=600), vm.serial
        first = injected(vm)
        refuse_data_write(vm, requester, 20)
        assert vm.wait_for("IOGUARD-DONE", timeout=600), vm.serial
        records = injected(vm)
    log = vm.log()
    assert len(first) == 1 and len(records) == 2, records
    for r in records:
        assert r["requester"] == requester and r["access"] == "write", r
    assert page_faults(log, driver) == [f"{r['iova']:x}" for r in records]
    # Both read intact: the first (through the page cache, which reads the
    # failed pages again) and the second.
    assert vm.checksums() == {disk.guest_name: disk.sha256}
    assert gp.parse_console_log(log).rechecks == \
        {disk.guest_name: disk.sha256}
    return log


def test_nvme_refused_read_is_an_io_error(tmp_path):
    image = tmp_path / "nvme.img"
    disk = ivm.nvme_behind_root_port(image, ivm.make_disk(image, 16, 21))
    log = run("dma-errors-nvme", disk, "01:00.0",
              "nvme 0000:01:00.0")

    # The first: the controller's status for the command, and the block
    # layer's error for the same request (a readahead: not retried).
    [(lba, status)] = re.findall(r"nvme0n1: I/O Cmd\(0x2\) @ LBA (\d+), \d+ "
                                 r"blocks, (.*) \(sct 0x0 / sc 0x4\)", log)
    assert status in ("I/O Error", "Data Transfer Error"), status
    assert io_errors(log, "nvme0n1") == [int(lba)]
    # The second (O_DIRECT) was retried by the driver, and succeeded: no
    # other error.


def test_nvme_refused_completion_is_a_fatal_status(tmp_path):
    """A refused write of a completion queue entry: the controller cannot
    tell the host how the command ended, so it sets Controller Fatal Status
    and stops until it is reset (it used to post that completion again
    with the next one, and Linux never learned of the failure). Linux finds
    the fatal status at the command's timeout, resets the controller, and
    reads the disk to the end."""
    image = tmp_path / "nvme.img"
    disk = ivm.nvme_behind_root_port(image, ivm.make_disk(image, 16, 26))
    workdir = WORK / "dma-errors-nvme-completion"
    trace = workdir / "nvme-trace.log"
    # One vCPU: one I/O queue pair, whose completion queue the rule names.
    vm = ivm.Vm(ivm.ioguard_args(), [disk], workdir=workdir, smp=1,
                append=f"{gp.kernel_params(pause=5)} "
                       "nvme_core.io_timeout=5",
                extra_args=["-trace", "pci_nvme_create_cq",
                            "-trace", "pci_nvme_err_cfs", "-D", str(trace)])
    with vm:
        assert vm.wait_for("IOGUARD-PAUSE", timeout=600), vm.serial
        vm.cmd("stop")
        # Linux's (the firmware created one before).
        cq = re.findall(r"pci_nvme_create_cq create completion queue, "
                        r"addr=(0x[0-9a-f]+), cqid=1,", trace.read_text())[-1]
        mappings = vm.cmd("query-ioguard-mappings", requester="01:00.0")
        [queue] = [r for r in mappings["ranges"]
                   if r["iova"] <= int(cq, 16) <= r["last"]]
        refuse_write(vm, "01:00.0", queue["iova"], queue["last"], 30)
        vm.cmd("cont")
        assert vm.wait_for("IOGUARD-DONE", timeout=600), vm.serial
        records = injected(vm)
    log = vm.log()

    [record] = records
    assert queue["iova"] <= record["iova"] <= queue["last"], record
    assert page_faults(log, "nvme 0000:01:00.0") == [f"{record['iova']:x}"]
    assert "controller fatal status" in trace.read_text()
    # CSTS 0x2: CFS, and no longer ready.
    assert "nvme nvme0: controller is down; will reset: CSTS=0x2" in log
    assert log.count("nvme nvme0: 1/0/0 default/read/poll queues") == 2
    assert vm.checksums() == {disk.guest_name: disk.sha256}


def test_ahci_refused_read_resets_the_port(tmp_path):
    image = tmp_path / "sata.img"
    disk = ivm.ahci(image, ivm.make_disk(image, 16, 22))
    log = run("dma-errors-ahci", disk, "00:1f.2",
              "ahci 0000:00:1f.2")

    # Both times: the host bus error, the port frozen and hard-reset.
    assert len(re.findall(r"ata1\.00: irq_stat 0x[0-9a-f]+, host bus error",
                          log)) == 2, log
    assert log.count("ata1: hard resetting link") == 2
    # The first (a readahead, which is not retried) failed: the I/O error
    # names the sector of the command libata reports failed.
    tf = re.search(r"ata1\.00: cmd 60/" + ":".join([r"(\w\w)"] * 5) + "/" +
                   ":".join([r"(\w\w)"] * 5) + "/", log)
    assert tf, log
    t = [int(x, 16) for x in tf.groups()]
    # feature:nsect:lbal:lbam:lbah/hob_feature:hob_nsect:hob_lbal:...
    lba = t[2] | t[3] << 8 | t[4] << 16 | t[7] << 24 | t[8] << 32 | t[9] << 40
    assert io_errors(log, "sda") == [lba]
    # The second (O_DIRECT) was retried after the reset, and succeeded: no
    # other I/O error.


def assert_virtio_blk_broken(vm, log, status, record, message):
    """The device broke on the refused DMA of record (QEMU printed message)
    and Linux's virtio_blk, told by the configuration interrupt, only read
    the capacity again."""
    assert page_faults(log, "virtio-pci 0000:01:00.0") == \
        [f"{record['iova']:x}"]
    assert any(s.startswith("VIRTIO_CONFIG_S_NEEDS_RESET")
               for s in status["statuses"]), status
    assert message in vm.stderr.read_text()
    assert re.search(r"virtio_blk virtio0: \[vda\] new size", log), log
    assert "I/O error" not in log


def test_virtio_blk_refused_read_needs_reset(tmp_path):
    """virtio has no per-request DMA error: QEMU marks the device broken
    (NEEDS_RESET, virtio_error()) and sends a configuration interrupt.
    Linux 6.12's virtio_blk only reads the capacity again; it never resets
    the device, so the read never completes (the reader waits, killable,
    for good) and nothing in the guest reports an error."""
    image = tmp_path / "vblk.img"
    disk = ivm.virtio_blk(image, ivm.make_disk(image, 16, 23))
    vm = ivm.Vm(ivm.ioguard_args(), [disk],
                workdir=WORK / "dma-errors-virtio-blk",
                append=gp.kernel_params(pause=5))
    with vm:
        assert vm.wait_for("IOGUARD-PAUSE", timeout=600), vm.serial
        refuse_data_write(vm, "01:00.0", 300)
        assert vm.wait_for("IO_PAGE_FAULT", timeout=300), vm.serial
        # What the guest does about it in the next 20 seconds: nothing.
        assert not vm.wait_for("IOGUARD-CHECKSUM", timeout=20), vm.serial
        [dev] = vm.cmd("x-query-virtio")
        status = vm.cmd("x-query-virtio-status", path=dev["path"])["status"]
        # One request queue per vCPU
        queues = [vm.cmd("x-query-virtio-queue-status", path=dev["path"],
                         queue=q) for q in range(2)]
        records = injected(vm)
    log = vm.log()

    [record] = records
    assert_virtio_blk_broken(vm, log, status, record,
                             "virtio: bogus descriptor or out of resources")
    # Requests the device took from a ring and never gave back (the
    # refused one; others in flight then are dropped by a broken device).
    assert any(q["last-avail-idx"] != q["used-idx"] for q in queues), queues


def test_virtio_blk_refused_used_ring_needs_reset(tmp_path):
    """A refused write of the used ring (the device's completions) marks
    the device broken too (it used to drop the write: the request it
    completed was lost, and nothing said so). Linux does what it does for
    a refused buffer."""
    image = tmp_path / "vblk.img"
    disk = ivm.virtio_blk(image, ivm.make_disk(image, 16, 27))
    # One vCPU: one request queue, whose used ring the rule names.
    vm = ivm.Vm(ivm.ioguard_args(), [disk], smp=1,
                workdir=WORK / "dma-errors-virtio-used-ring",
                append=gp.kernel_params(pause=5))
    with vm:
        assert vm.wait_for("IOGUARD-PAUSE", timeout=600), vm.serial
        vm.cmd("stop")
        [dev] = vm.cmd("x-query-virtio")
        queue = vm.cmd("x-query-virtio-queue-status", path=dev["path"],
                       queue=0)
        # flags, idx, one element per descriptor, avail_event
        used = queue["vring-used"]
        last = used + 2 + 2 + 8 * queue["vring-num"] + 2 - 1
        refuse_write(vm, "01:00.0", used, last, 10)
        vm.cmd("cont")
        assert vm.wait_for("IO_PAGE_FAULT", timeout=300), vm.serial
        assert not vm.wait_for("IOGUARD-CHECKSUM", timeout=20), vm.serial
        status = vm.cmd("x-query-virtio-status", path=dev["path"])["status"]
        records = injected(vm)
    log = vm.log()

    [record] = records
    assert used <= record["iova"] <= last, record
    assert_virtio_blk_broken(
        vm, log, status, record,
        "virtio: the IOMMU refused an access to the used ring")


def test_every_dma_refused_qemu_stays_responsive(tmp_path):
    """Every DMA of the NVMe and the AHCI controller refused from boot:
    QEMU answers QMP within a second throughout and stays up, and Linux
    gives up on both disks. The NVMe controller cannot fetch its first
    command (its fatal status, CSTS.CFS), and after the admin timeout Linux
    disables it; AHCI cannot write the received FISes, so the disk's
    signature never arrives and libata's resets find an unknown device."""
    nvme_image, sata_image = tmp_path / "nvme.img", tmp_path / "sata.img"
    disks = [ivm.nvme_behind_root_port(nvme_image,
                                       ivm.make_disk(nvme_image, 1, 24)),
             ivm.ahci(sata_image, ivm.make_disk(sata_image, 1, 25))]
    rules = tmp_path / "rules"
    rules.write_text("site=translate,requester=01:00.0,action=fault\n"
                     "site=translate,requester=00:1f.2,action=fault\n")
    vm = ivm.Vm(ivm.ioguard_args(f"fault-rules={rules}"), disks,
                workdir=WORK / "dma-errors-all-refused",
                append="nvme_core.admin_timeout=10")
    with vm:
        watch = hg.QmpWatch(vm)
        watch.start()
        done = vm.wait_for("IOGUARD-DONE", timeout=600)
        watch.stop_event.set()
        watch.join()
        rules_now = vm.cmd("query-ioguard-fault-rules", device="iommu")
        alive = vm.proc.poll() is None
    log = vm.log()

    assert done and alive, vm.serial
    assert watch.error is None and watch.polls >= 100, watch.error
    assert watch.max_s < hg.QMP_DEADLINE_S, watch.max_s
    assert all(r["fired"] > 0 and r["fired"] == r["matches"]
               for r in rules_now[0]["rules"]), rules_now
    assert page_faults(log, "nvme 0000:01:00.0")
    assert page_faults(log, "ahci 0000:00:1f.2")
    assert "nvme 0000:01:00.0: probe with driver nvme failed" in log
    assert "ata1: link online but 1 devices misclassified" in log
    missing = gp.parse_console_log(log).missing
    assert "nvme0n1" in missing and "sda" in missing
