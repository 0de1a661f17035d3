"""Bad properties get a clear error that names them, and QEMU exits
cleanly instead of starting a machine it cannot honour."""

import re
import subprocess
import time
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import ioguard_vm as ivm  # noqa: E402


def start(props, *extra):
    return subprocess.run(
        [str(ivm.QEMU), "-L", str(ivm.firmware_dir()), "-M", "q35",
         "-nodefaults", "-display", "none", "-S",
         "-device", ",".join(["ioguard-iommu", *props]), *extra],
        capture_output=True, text=True, timeout=60, input="")


@pytest.mark.parametrize("props, message", [
    (["device-iotlb=perhaps"], "'device-iotlb' expects 'on' or 'off'"),
    (["dma-remap=later"], "'dma-remap' expects 'on' or 'off'"),
    (["xtsup=on", "ga=off"], "xtsup=on needs ga=on"),
    (["ga=maybe"], "'ga' expects 'on' or 'off'"),
    (["intremap=sometimes"], "intremap"),
    (["fault-records=100000"], "fault-records=100000 is more than 65536"),
    (["fault-records=-1"], "fault-records"),
    (["verifier=yes please"], "'verifier' expects 'on' or 'off'"),
    (["prefetch-depth=1000"], "prefetch-depth=1000 is more than 256"),
    (["streaming=00:05"], "streaming='00:05': '00:05' is not a requester ID"),
    (["streaming=00:05.0@0x2000-0x1000"],
     "streaming='00:05.0@0x2000-0x1000': IOVA range '0x2000-0x1000' ends "
     "before it starts"),
    (["streaming=00:05.0@nonsense"], "'nonsense' is not an IOVA range"),
    (["latency-model=sometimes"], "'latency-model' expects 'on' or 'off'"),
])
def test_unsupported_values_are_refused_by_name(props, message):
    r = start(props)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr


def test_nic_ats_needs_a_pcie_bus():
    r = start([], "-device", "pcie-pci-bridge,id=br,addr=0x5",
              "-device", "ioguard-nic,bus=br,addr=0x1,ats=on")
    assert r.returncode != 0
    assert "ioguard-nic: ats=on needs a PCI Express bus" in r.stderr, r.stderr


def test_nic_pri_needs_ats():
    r = start([], "-device", "ioguard-nic,addr=0x5,pri=on")
    assert r.returncode != 0
    assert "ioguard-nic: pri=on needs ats=on" in r.stderr, r.stderr


def test_more_than_255_cpus_need_xtsup():
    r = start([], "-smp", "1,maxcpus=288", "-accel", "tcg")
    assert r.returncode != 0
    assert "need xtsup=on" in r.stderr, r.stderr


def test_devices_given_before_the_iommu_or_hot_plugged_are_translated(tmp_path):
    """-device nvme before -device ioguard-iommu: QEMU sets up each PCI
    device's DMA address space when the machine is complete, so the NVMe is
    behind the IOMMU all the same; so is one hot-plugged later. (The
    IOMMU names each address space it makes ioguard-BUS-SLOT.FN.)"""
    qmp_path = tmp_path / "qmp.sock"
    proc = subprocess.Popen(
        [str(ivm.QEMU), "-L", str(ivm.firmware_dir()), "-M", "q35",
         "-nodefaults", "-display", "none", "-S",
         "-qmp", f"unix:{qmp_path},server=on,wait=off",
         "-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,addr=0x2",
         "-device", "pcie-root-port,id=rp2,bus=pcie.0,chassis=2,addr=0x3",
         "-drive", "if=none,id=d0,driver=null-co,size=1M",
         "-drive", "if=none,id=d1,driver=null-co,size=1M",
         "-device", "nvme,id=before,drive=d0,serial=a,bus=rp1",
         "-device", "ioguard-iommu,id=iommu"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while not qmp_path.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline, "no QMP socket"
            time.sleep(0.05)
        qmp = ivm.Qmp(qmp_path)

        def address_spaces():
            mtree = qmp.cmd("human-monitor-command",
                            **{"command-line": "info mtree"})
            return set(re.findall(r"^address-space: (\S+)", mtree, re.M))

        assert "ioguard-rp1-00.0" in address_spaces()
        assert "ioguard-rp2-00.0" not in address_spaces()
        qmp.cmd("device_add", driver="nvme", id="later", drive="d1",
                serial="b", bus="rp2")
        assert "ioguard-rp2-00.0" in address_spaces()
    finally:
        proc.kill()
        proc.wait(timeout=30)
