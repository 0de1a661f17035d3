"""Guest tests: Linux's v2 page tables (amd_iommu=pgtbl_v2) on
ioguard-iommu,guest-translation=on. Debian's 6.12 finds GT and GIOSup in
the EFR, puts every DMA domain's tables in the x86-64 format behind a GCR3
table (DTE.GV, GIoV), and reads an NVMe disk behind a root port, an AHCI
disk and a virtio-blk disk through them, and sends frames round
ioguard-nic's loopback, in lazy and strict mode; without the property it
falls back to v1 tables, as on an IOMMU without guest translation."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import guest_protocol as gp  # noqa: E402
import ioguard_vm as ivm  # noqa: E402
from test_boot import assert_healthy, assert_read_everything, boot  # noqa: E402

WORK = ivm.BUILD / "tests" / "guest"
V2_ENABLED = "AMD-Vi: V2 page table enabled (Paging mode : 4 level)"
FALLBACK = "Cannot enable v2 page table for DMA-API. Fallback to v1."


@pytest.fixture(scope="module")
def disks():
    WORK.mkdir(parents=True, exist_ok=True)
    nvme = WORK / "nvme-v2.img"
    sata = WORK / "ahci-v2.img"
    vblk = WORK / "virtio-v2.img"
    return [ivm.nvme_behind_root_port(nvme, ivm.make_disk(nvme, 16, seed=23)),
            ivm.ahci(sata, ivm.make_disk(sata, 16, seed=24)),
            ivm.virtio_blk(vblk, ivm.make_disk(vblk, 16, seed=25))]


MODES = {
    "lazy": ("", "DMA-FQ"),
    "strict": ("iommu.strict=1", "DMA"),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_disks_through_v2_tables(mode, disks):
    append, group_type = MODES[mode]
    log, checksums, stats = boot(
        f"v2-{mode}", disks,
        f"amd_iommu=pgtbl_v2 {append} "
        f"{gp.kernel_params(net='10.0.2.15/24', nicloop='1500:1000')}",
        props=("guest-translation=on",), extra_args=ivm.nic("user,id=n0"))
    assert_healthy(log)
    loops = gp.parse_console_log(log).nic_loops_of("eth0")
    assert loops and all(run.intact and run.received == 1000
                         for run in loops), loops
    assert V2_ENABLED in log
    assert "PreF PPR GT IA GA" in log, "PPR, GT not in Linux's feature line"
    types = gp.parse_console_log(log).domain_types
    assert types is not None and group_type in types, types
    assert_read_everything(disks, checksums)
    assert stats["faults"] == 0
    assert stats["events-logged"] == 0
    # Every walk read the PASID's GCR3 entry and four v2 levels (a v1 walk
    # of Linux's 3-level tables reads three).
    assert stats["iotlb-misses"] > 1000
    assert stats["guest-walks"] == stats["iotlb-misses"]
    assert stats["page-walk-levels"] == 5 * stats["iotlb-misses"]
    # Linux invalidates v2 pages with GN=1, PASID 0 (INVALIDATE_IOMMU_PAGES).
    commands = {c["name"]: c["count"] for c in stats["commands"]}
    assert commands.get("invalidate-iommu-pages", 0) > 0


def test_without_the_property_linux_falls_back_to_v1(disks):
    log, checksums, stats = boot("v2-off", disks, "amd_iommu=pgtbl_v2")
    assert_healthy(log)
    assert FALLBACK in log
    assert V2_ENABLED not in log
    assert_read_everything(disks, checksums)
    assert stats["faults"] == 0
    assert stats["guest-walks"] == 0
