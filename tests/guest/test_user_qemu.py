"""The QEMU that scripts/build-qemu makes is one a user would run: its
tools make the images a user boots (qemu-img), and a host folder shared
over virtio-9p, as kernel developers boot their own kernels with, works
in a machine with ioguard-iommu.

The share is the usual -virtfs kind, without iommu_platform=on: its DMA
does not go through any IOMMU. With iommu_platform=on, virtio-9p hangs
part-way through reading a file of a few MiB behind every vIOMMU of this
QEMU (intel-iommu and amd-iommu as well as ioguard-iommu), which is issue
22's to take up."""

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import guest_protocol as gp  # noqa: E402
import ioguard_vm as ivm  # noqa: E402

WORK = ivm.BUILD / "tests" / "guest" / "user-qemu"
QEMU_IMG = ivm.QEMU.parent / "qemu-img"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def test_9p_share_and_a_qcow2_image_made_by_qemu_img():
    WORK.mkdir(parents=True, exist_ok=True)
    raw = WORK / "disk.raw"
    disk_sum = ivm.make_disk(raw, 16, seed=21)
    image = WORK / "disk.qcow2"
    image.unlink(missing_ok=True)
    subprocess.run([str(QEMU_IMG), "convert", "-f", "raw", "-O", "qcow2",
                    str(raw), str(image)], check=True)
    raw.unlink()
    info = json.loads(subprocess.run(
        [str(QEMU_IMG), "info", "--output=json", str(image)],
        check=True, capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2"
    assert info["virtual-size"] == 16 << 20

    share = WORK / "share"
    share.mkdir(exist_ok=True)
    (share / "from-guest").unlink(missing_ok=True)
    from_host = random.Random(22).randbytes(4 << 20)
    (share / "from-host").write_bytes(from_host)

    nvme = ivm.nvme_behind_root_port(image, disk_sum, image_format="qcow2")
    virtfs = [
        "-device", "pcie-root-port,id=rp-9p,bus=pcie.0,chassis=2,addr=0x3",
        "-fsdev", f"local,id=fs0,path={share},security_model=none",
        "-device", "virtio-9p-pci,fsdev=fs0,mount_tag=hostshare,bus=rp-9p",
    ]
    vm = ivm.Vm(ivm.ioguard_args(), [nvme],
                append=gp.kernel_params(share="hostshare"),
                workdir=WORK / "vm", extra_args=virtfs)
    with vm:
        finished = vm.wait_for("IOGUARD-DONE", timeout=900)
        stats = vm.cmd("query-ioguard-stats")[0]
    guest = gp.parse_console_log(vm.log())
    assert finished, f"guest did not finish, see {vm.serial}"

    assert vm.checksums().get("nvme0n1") == disk_sum
    assert guest.share_read.get("from-host") == sha256(from_host), \
        f"the guest did not read the share right, see {vm.serial}"
    wrote = guest.share_wrote.get("from-guest")
    assert wrote, f"the guest did not write the share, see {vm.serial}"
    assert sha256((share / "from-guest").read_bytes()) == wrote

    # The NVMe's DMA went through the IOMMU's page tables, none refused.
    assert stats["faults"] == 0 and stats["events-logged"] == 0
    nvme_stats = [r for r in stats["requesters"] if r["requester"] == "01:00.0"]
    assert nvme_stats and nvme_stats[0]["page-walks"] > 0
