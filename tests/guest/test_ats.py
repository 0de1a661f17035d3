"""Guest tests: ATS. With device-iotlb=on, ioguard-iommu says IotlbSup=1;
Linux then enables ATS on a virtio-blk that offers it (ats=on) and, after
each invalidation of its own IOTLB that concerns the disk, tells the disk's
translation cache with INVALIDATE_IOTLB_PAGES. The disk reads back right in
lazy and strict mode. Without device-iotlb=on, Linux never sends one.

The guest is Debian's 6.1, and Debian's 6.12 with guest-translation=on:
6.12 reads a device's ATS capability only when the IOMMU also offers guest
translation and the PPR log (GTSup, PPRSup, EPHSup:
amd_iommu_gt_ppr_supported() in iommu_init_device)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import guest_protocol as gp  # noqa: E402
import ioguard_vm as ivm  # noqa: E402

WORK = ivm.BUILD / "tests" / "guest"

GT = ("device-iotlb=on", "guest-translation=on")
CASES = {
    # name: (IOMMU properties, kernel arguments, device IOTLB flushes
    # expected, guest)
    "lazy": (("device-iotlb=on",), "", True, ivm.GUEST_6_1),
    "strict": (("device-iotlb=on",), "iommu.strict=1", True, ivm.GUEST_6_1),
    "no-device-iotlb": ((), "", False, ivm.GUEST_6_1),
    # 6.12 with v1 tables, and with v2 tables (pgtbl_v2): invalidations
    # of v2 pages flush the device IOTLB as well.
    "6.12-lazy": (GT, "", True, ivm.GUEST),
    "6.12-pgtbl_v2-strict": (GT, "amd_iommu=pgtbl_v2 iommu.strict=1", True,
                             ivm.GUEST),
    "6.12-without-guest-translation": (("device-iotlb=on",), "", False,
                                       ivm.GUEST),
}


@pytest.fixture(scope="module")
def disk():
    WORK.mkdir(parents=True, exist_ok=True)
    image = WORK / "ats.img"
    return ivm.virtio_blk(image, ivm.make_disk(image, 16, seed=31), ats=True)


@pytest.mark.parametrize("case", list(CASES))
def test_device_iotlb_invalidations(case, disk):
    props, append, flushes, guest = CASES[case]
    vm = ivm.Vm(ivm.ioguard_args(*props), [disk], append=append,
                workdir=WORK / f"ats-{case}", guest=guest)
    with vm:
        finished = vm.wait_for("IOGUARD-DONE", timeout=900)
        stats = vm.stats()
    assert finished, f"guest did not finish, see {vm.serial}"
    log = vm.log()
    for bad in ("Event logged", "Completion-Wait loop timed out",
                "IOTLB_INV_TIMEOUT", "Command buffer timeout"):
        assert bad not in log, bad
    assert vm.checksums().get("vda") == disk.sha256
    assert stats["faults"] == 0
    commands = {c["name"]: c["count"] for c in stats["commands"]}
    device_flushes = commands.get("invalidate-iotlb-pages", 0)
    if flushes:
        assert device_flushes > 0, commands
    else:
        assert device_flushes == 0, commands


NIC_BEHIND_ROOT_PORT = [
    "-device", "pcie-root-port,id=rp1,chassis=3,addr=0x4",
    "-netdev", "hubport,hubid=0,id=n0",
    "-device", "ioguard-nic,id=nic0,netdev=n0,bus=rp1,ats=on"]


def nic_atc(vm):
    return {name: vm.cmd("qom-get", path="/machine/peripheral/nic0",
                         property=f"atc-{name}")
            for name in ("hits", "misses", "invalidations")}


@pytest.mark.parametrize("mode", ["lazy", "strict"])
def test_nic_device_iotlb(mode):
    """ioguard-nic with ats=on behind a root port: Linux enables its ATS,
    the NIC's DMA goes through its own translation cache (misses are ATS
    translation requests to the IOMMU), and INVALIDATE_IOTLB_PAGES for the
    NIC empties what the guest unmapped. Every frame arrives intact; the
    frames are mapped one by one (tx-copybreak 0), so unmaps are many."""
    append = "iommu.strict=1" if mode == "strict" else ""
    vm = ivm.Vm(ivm.ioguard_args("device-iotlb=on"), [],
                append=f"{append} "
                       f"{gp.kernel_params(nicloop=[(1500, 2000, 0)])}",
                workdir=WORK / f"ats-nic-{mode}", guest=ivm.GUEST_6_1,
                extra_args=NIC_BEHIND_ROOT_PORT)
    with vm:
        finished = vm.wait_for("IOGUARD-DONE", timeout=900)
        stats = vm.stats()
        atc = nic_atc(vm)
    assert finished, f"guest did not finish, see {vm.serial}"
    log = vm.log()
    for bad in ("Event logged", "Completion-Wait loop timed out",
                "IOTLB_INV_TIMEOUT", "Command buffer timeout"):
        assert bad not in log, bad
    loops = gp.parse_console_log(log).nic_loops_of("eth0")
    assert loops and all(run.intact and run.received == 2000
                         for run in loops), loops
    commands = {c["name"]: c["count"] for c in stats["commands"]}
    assert commands.get("invalidate-iotlb-pages", 0) > 0, commands
    assert stats["faults"] == 0
    # The cache was used, and emptied by the guest's device-IOTLB flushes.
    assert atc["hits"] > atc["misses"] > 0, atc
    assert atc["invalidations"] > 0, atc


def test_nic_ats_use_after_a_dropped_invalidation():
    """A fault rule drops every INVALIDATE_IOTLB_PAGES on its way to the
    NIC: its device IOTLB keeps what the guest unmapped, and the NIC uses
    it. The DMA verifier flags those uses (strict mode: each frame's buffer
    is unmapped, and invalidated, at once)."""
    work = WORK / "ats-nic-dropped"
    work.mkdir(parents=True, exist_ok=True)
    rules = work / "device-iotlb.rules"
    rules.write_text("site=device-iotlb,action=drop\n")
    guest_errors = work / "guest-errors.log"
    vm = ivm.Vm(ivm.ioguard_args("device-iotlb=on", "verifier=on",
                                 f"fault-rules={rules}"), [],
                append="iommu.strict=1 " +
                       gp.kernel_params(nicloop=[(1500, 2000, 0)]),
                workdir=work, guest=ivm.GUEST_6_1,
                extra_args=[*NIC_BEHIND_ROOT_PORT, "-d", "guest_errors",
                            "-D", str(guest_errors)])
    with vm:
        finished = vm.wait_for("IOGUARD-DONE", timeout=900)
        faults = vm.cmd("query-ioguard-faults")[0]["faults"]
        atc = nic_atc(vm)
    assert finished, f"guest did not finish, see {vm.serial}"
    assert atc["invalidations"] == 0 and atc["hits"] > 0, atc
    findings = [f for f in faults
                if f["reason"] == "ats-use-after-invalidation"]
    assert findings, faults
    assert all(f["requester"] == "01:00.0" and
               f["delivery"] == "not-reported" for f in findings), findings
    # Each names where the kept translation sent the DMA.
    assert all("stale-target" in f for f in findings), findings
    assert ("requester 01:00.0 write at IOVA" in guest_errors.read_text() or
            "requester 01:00.0 read at IOVA" in guest_errors.read_text())
    assert ("through an ATS translation after an INVALIDATE_IOTLB_PAGES "
            "covered it" in guest_errors.read_text())
