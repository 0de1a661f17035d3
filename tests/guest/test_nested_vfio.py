"""Guest test: device assignment (vfio-pci) behind ioguard-iommu, without
hardware. The guest runs on ioguard-iommu; its ioguard-nic is bound to
vfio-pci and assigned to an inner QEMU (this project's binary, in an
initramfs appended to the guest's) with -device ioguard-iommu,dma-remap=on.
The inner QEMU runs the qtest accelerator and tests/guest/nested-vfio.sh
speaks the qtest protocol to it: it programs the inner IOMMU and has the
NIC's DMA test engine copy between IOVAs. The NIC's DMA really happens in
this (the outer) QEMU, through the outer ioguard-iommu's tables, which the
guest's VFIO filled with what the inner IOMMU's MAP notifications said,
from v1 tables and from guest (v2) tables as amd_iommu=pgtbl_v2 sets them
up."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import guest_protocol as gp  # noqa: E402
import ioguard_vm as ivm  # noqa: E402

WORK = ivm.BUILD / "tests" / "guest" / "nested-vfio"
NIC = "00:05.0"
SRC, DST1, DST2 = 0x300000, 0x310000, 0x320000
PATTERN = "0x" + "a5" * 16
ZERO = "0x" + "00" * 16
SEED = 22   # of the hostile part's random choices


def inner_qemu_archive():
    """An initramfs with the inner QEMU: the stripped binary, the libraries
    ldd names (at the same paths), the firmware in /fw and the script."""
    root = WORK / "inner-root"
    shutil.rmtree(root, ignore_errors=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "extra").mkdir()
    subprocess.run(["strip", "-o", root / "usr/bin/qemu-system-x86_64",
                    ivm.QEMU], check=True)
    ldd = subprocess.run(["ldd", ivm.QEMU], check=True, capture_output=True,
                         text=True).stdout
    for lib in re.findall(r"(/\S+) \(0x", ldd):
        dest = root / lib.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(lib).resolve(), dest)
    shutil.copytree(ivm.firmware_dir(), root / "fw")
    script = root / "extra" / "nested-vfio.sh"
    shutil.copy(Path(__file__).with_name("nested-vfio.sh"), script)
    script.chmod(0o755)
    archive = WORK / "inner.cpio.gz"
    subprocess.run(f"find . | cpio -o -H newc --quiet | gzip -1 > {archive}",
                   shell=True, cwd=root, check=True)
    return archive


def steps_of(log):
    return {m[0]: {"te": int(m[1], 16), "err": int(m[2], 16), "data": m[3]}
            for m in re.findall(r"IOGUARD-NESTED step=(\S+) te=(\S+) "
                                r"err=(\S+) data=(\S+)", log)}


def trace_of(log, step):
    """The inner IOMMU's notifications before step's copy, as
    (kind, iova, mask, target or None)."""
    out = []
    for kind, rest in re.findall(rf"IOGUARD-NESTED-TRACE step={step} "
                                 r"ioguard_notify_(map|unmap) (.*)", log):
        iova, mask = (int(x, 16) for x in
                      re.search(r"iova (\S+) mask (\S+)", rest).groups())
        target = re.search(r"-> (\S+)", rest)
        out.append((kind, iova, mask, int(target[1], 16) if target else None))
    return out


def test_assigned_nic_follows_the_inner_tables():
    guest = Path(ivm.GUEST).resolve()
    folder = ivm.guest_with_extra(WORK / "guest", guest / "vfio.cpio.gz",
                                  inner_qemu_archive())
    vm = ivm.Vm(ivm.ioguard_args(), [], workdir=WORK / "vm", guest=folder,
                append=gp.kernel_params(run="nested-vfio.sh", seed=SEED),
                extra_args=["-device", f"ioguard-nic,addr={NIC[3:]}"])
    with vm:
        finished = vm.wait_for("IOGUARD-DONE", timeout=900)
        faults = vm.cmd("query-ioguard-faults")[0]["faults"]
    assert finished, f"guest did not finish, see {vm.serial}"
    log = vm.log()
    assert "IOGUARD-NESTED-ERROR" not in log, vm.serial

    # Without dma-remap=on the inner machine does not start, and says why.
    refused = re.search(r"IOGUARD-NESTED-REFUSED exit=(\d+) message=(.*)", log)
    assert refused and refused[1] == "1", refused
    assert re.search(r"ioguard-iommu: vfio-pci '' at 00:02.0 needs MAP "
                     r"notifications: add dma-remap=on", refused[2]), refused[2]
    # Nor is one hot-plugged into it, and the machine goes on.
    hotplug = re.search(r"IOGUARD-NESTED-HOTPLUG message=(.*)", log)
    assert hotplug and re.search(
        r"Failed to set vIOMMU: ioguard-iommu: vfio-pci 'hot' at \S+ needs "
        r"MAP notifications: add dma-remap=on", hotplug[1]), hotplug
    assert "IOGUARD-NESTED-HOTPLUG-ALIVE" in log

    steps = steps_of(log)
    done, error = 2, 4
    # IOMMU off: identity.
    assert steps["identity"] == {"te": done, "err": 0, "data": PATTERN}
    # Replayed when translation came on: exactly the two entries.
    assert trace_of(log, "translated") == [
        ("map", 0x1000000, 0xfff, SRC), ("map", 0x1001000, 0xfff, DST1)]
    assert steps["translated"]["te"] == done
    assert steps["translated"]["data"] == PATTERN
    # An IOVA the tables do not map: refused by the outer IOMMU.
    assert steps["unmapped"]["te"] == done | error
    assert steps["unmapped"]["err"] == 0x1002000
    assert steps["unmapped"]["data"] == ZERO
    # Mapped and invalidated: one MAP, and the data lands at its target.
    assert trace_of(log, "mapped") == [("map", 0x1002000, 0xfff, DST2)]
    assert steps["mapped"] == {"te": done, "err": 0, "data": PATTERN}
    # Unmapped and invalidated: one UNMAP, and the copy is refused.
    assert trace_of(log, "unmapped-again") == [
        ("unmap", 0x1001000, 0xfff, None)]
    assert steps["unmapped-again"]["te"] == done | error
    assert steps["unmapped-again"]["err"] == 0x1001000
    assert steps["unmapped-again"]["data"] == ZERO
    # Off: what vfio held is unmapped, exactly. On again: the replay is the
    # tables as they are now.
    assert sorted(trace_of(log, "replayed")) == [
        ("map", 0x1000000, 0xfff, SRC), ("map", 0x1002000, 0xfff, DST2),
        ("unmap", 0x1000000, 0xfff, None), ("unmap", 0x1002000, 0xfff, None)]
    assert [t[0] for t in trace_of(log, "replayed")] == [
        "unmap", "unmap", "map", "map"]
    assert steps["replayed"] == {"te": done, "err": 0, "data": PATTERN}
    assert steps["replayed-unmapped"]["te"] == done | error
    assert steps["replayed-unmapped"]["err"] == 0x1001000

    # A 2 MiB page, after INVALIDATE_IOMMU_ALL: one entry, whole.
    assert trace_of(log, "large-page") == [
        ("map", 0x1200000, 0x1fffff, 0x400000)]
    assert steps["large-page"] == {"te": done, "err": 0, "data": PATTERN}
    # Replaced by a table, one small page invalidated: the large page goes.
    assert trace_of(log, "split") == [
        ("unmap", 0x1200000, 0x1fffff, None),
        ("map", 0x1280000, 0xfff, 0x330000)]
    assert steps["split"] == {"te": done, "err": 0, "data": PATTERN}
    # A 2 MiB page over the interrupt window: vfio gets the part above it.
    assert trace_of(log, "msi-window") == [
        ("map", 0xfef00000, 0xfffff, 0x700000)]
    assert steps["msi-window"] == {"te": done, "err": 0, "data": PATTERN}
    # A new DTE with empty tables: every entry unmapped, then all back.
    held = [(0x1000000, 0xfff, SRC), (0x1002000, 0xfff, DST2),
            (0x1280000, 0xfff, 0x330000), (0xfef00000, 0xfffff, 0x700000)]
    assert sorted(trace_of(log, "dte-change")) == [
        ("unmap", iova, mask, None) for iova, mask, _ in held]
    assert steps["dte-change"]["te"] == done | error
    assert steps["dte-change"]["err"] == 0x1000000
    assert sorted(trace_of(log, "dte-back")) == [
        ("map", *entry) for entry in held]
    assert steps["dte-back"] == {"te": done, "err": 0, "data": PATTERN}

    # Guest (v2) tables (pgtbl_v2): the v1 entries PASID 0's tables do not
    # have go, the one they map alike (0x1000000 -> SRC, read) stays, and
    # their new one comes.
    assert sorted(trace_of(log, "guest-tables")) == sorted(
        [("unmap", iova, mask, None) for iova, mask, _ in held[1:]] +
        [("map", 0x1001000, 0xfff, DST1)])
    assert steps["guest-tables"] == {"te": done, "err": 0, "data": PATTERN}
    # A GN=1 invalidation of PASID 0 after a map and after an unmap.
    assert trace_of(log, "guest-mapped") == [("map", 0x1002000, 0xfff, DST2)]
    assert steps["guest-mapped"] == {"te": done, "err": 0, "data": PATTERN}
    assert trace_of(log, "guest-unmapped") == [
        ("unmap", 0x1001000, 0xfff, None)]
    assert steps["guest-unmapped"]["te"] == done | error
    assert steps["guest-unmapped"]["err"] == 0x1001000

    # Each refusal is the outer IOMMU's, for the NIC, at the inner IOVA.
    refusals = sorted(f["iova"] for f in faults if f["requester"] == NIC)
    assert refusals == [0x1000000, 0x1001000, 0x1001000, 0x1001000,
                        0x1002000], faults
    assert all(f["reason"] == "not-present"
               for f in faults if f["requester"] == NIC), faults
    # A hostile guest with vfio listening: the inner QEMU answered every
    # command, and with sane tables again the DMA goes where they say.
    hostile = re.search(r"IOGUARD-NESTED-HOSTILE seed=(\d+) ops=(\d+) "
                        r"seconds=(\d+) maps=(\d+) unmaps=(\d+)", log)
    assert hostile and hostile[1] == str(SEED) and hostile[2] == "1500"
    assert int(hostile[4]) > 0 and int(hostile[5]) > 0, hostile[0]
    assert steps["after-hostile"] == {"te": done, "err": 0, "data": PATTERN}
    assert "IOGUARD-NESTED-ALIVE" in log
    # Nor did vfio or QEMU complain: what is not RAM was never mapped.
    # (ioguard-nic has no reset vfio can use, which vfio says at each
    # machine reset: the inner machine's start and end.)
    said = [line for line in re.findall(r"IOGUARD-NESTED-INNER (.*)", log)
            if "no available reset mechanism" not in line]
    assert not said, said
