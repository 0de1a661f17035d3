"""Guest tests: Debian's kernel boots on q35 with ioguard-iommu, finds it
through the IVRS, enables interrupt remapping, and reads an NVMe disk behind
a PCIe root port and an AHCI disk through it in lazy, strict and
passthrough modes, with the data checksummed and ioguard's counters showing
the path the DMA took."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import guest_protocol as gp  # noqa: E402
import ioguard_vm as ivm  # noqa: E402

WORK = ivm.BUILD / "tests" / "guest"


@pytest.fixture(scope="module")
def disks():
    WORK.mkdir(parents=True, exist_ok=True)
    nvme = WORK / "nvme.img"
    sata = WORK / "ahci.img"
    return [ivm.nvme_behind_root_port(nvme, ivm.make_disk(nvme, 16, seed=11)),
            ivm.ahci(sata, ivm.make_disk(sata, 16, seed=12))]


def boot(name, disks, append="", props=(), guest=ivm.GUEST, extra_args=()):
    vm = ivm.Vm(ivm.ioguard_args(*props), disks, append=append,
                workdir=WORK / name, guest=guest, extra_args=extra_args)
    with vm:
        finished = vm.wait_for("IOGUARD-DONE", timeout=900)
        stats = vm.stats()
    assert finished, f"guest did not finish, see {vm.serial}"
    return vm.log(), vm.checksums(), stats


def assert_healthy(log, kernel="6.12"):
    if kernel == "6.12":
        assert "AMD-Vi: Using global IVHD EFR" in log, "IVRS not used"
    else:
        assert "AMD-Vi: Found IOMMU cap" in log, "IVRS not used"
    assert "AMD-Vi: Interrupt remapping enabled" in log
    for bad in ("Firmware Bug", "Event logged", "Completion-Wait loop timed out",
                "Command buffer timeout", "IVRS invalid checksum",
                "Failed to initialize IOMMU"):
        assert bad not in log, bad
    # The NVMe controller behind the root port is behind the IOMMU.
    assert "pci 0000:01:00.0: Adding to iommu group" in log


def assert_read_everything(disks, checksums):
    for d in disks:
        assert checksums.get(d.guest_name) == d.sha256, d.guest_name


MODES = {
    # name: (kernel arguments, policy line, group type)
    "lazy": ("", "DMA domain TLB invalidation policy: lazy mode", "DMA-FQ"),
    "strict": ("iommu.strict=1", "DMA domain TLB invalidation policy: strict mode",
               "DMA"),
    "passthrough": ("iommu=pt", "Default domain type: Passthrough", "identity"),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_disks_through_the_iommu(mode, disks):
    append, policy, group_type = MODES[mode]
    log, checksums, stats = boot(mode, disks, append)
    assert_healthy(log)
    assert policy in log
    types = gp.parse_console_log(log).domain_types
    assert types is not None, "no IOGUARD-DOMAIN-TYPES line"
    assert group_type in types, types
    assert_read_everything(disks, checksums)
    assert stats["faults"] == 0
    assert stats["events-logged"] == 0
    assert stats["interrupts-remapped"] > 0
    assert stats["interrupts-blocked"] == 0
    if mode == "passthrough":
        # Identity domains (DTE Mode=0, IR=IW=1): the disks' requesters see
        # memory directly, with no page walk at all.
        assert stats["page-walks"] == 0
        assert stats["identity-requesters"] >= 2
    else:
        # 2 x 16 MiB read: thousands of translated pages.
        assert stats["identity-requesters"] == 0
        assert stats["page-walks"] > 1000
        assert stats["iotlb-hits"] + stats["iotlb-misses"] > 4096


def test_32bit_interrupt_remapping_entries(disks):
    """ga=off: no GASup, so Linux picks the 32-bit IRTE format."""
    log, checksums, stats = boot("ga-off", disks, props=["ga=off"])
    assert_healthy(log)
    features = [l for l in log.splitlines() if "AMD-Vi: Extended features" in l]
    assert features and " GA" not in features[0], features
    assert_read_everything(disks, checksums)
    assert stats["interrupts-remapped"] > 0
    assert stats["interrupts-blocked"] == 0


def test_device_behind_a_pcie_to_pci_bridge(disks):
    """virtio-blk behind a pcie-pci-bridge: Linux programs the alias the
    IVRS names (secondary bus, devfn 0), which is the ID its DMA carries."""
    image = WORK / "bridged.img"
    bridged = ivm.virtio_blk_behind_pci_bridge(
        image, ivm.make_disk(image, 8, seed=13))
    log, checksums, stats = boot("bridge", [disks[0], bridged])
    assert_healthy(log)
    assert_read_everything([disks[0], bridged], checksums)
    assert stats["faults"] == 0
    assert stats["events-logged"] == 0
    assert stats["page-walks"] > 0


def test_dma_remap_makes_linux_invalidate_on_map(disks):
    """dma-remap=on (for vfio-pci behind the IOMMU) sets NpCache: Linux
    then invalidates after each map too, and runs strict."""
    log, checksums, stats = boot("dma-remap", disks, props=["dma-remap=on"])
    assert_healthy(log)
    assert "AMD-Vi: Using strict mode due to virtualization" in log
    types = gp.parse_console_log(log).domain_types
    assert types is not None and "DMA" in types and "DMA-FQ" not in types
    assert_read_everything(disks, checksums)
    assert stats["faults"] == 0
    assert stats["events-logged"] == 0
    # Invalidations on map as well as on unmap: more than the same reads
    # make in strict mode without it.
    _, _, strict = boot("dma-remap-baseline", disks, "iommu.strict=1")
    assert stats["invalidations"] > strict["invalidations"], (
        stats["invalidations"], strict["invalidations"])


def test_debian_6_1_kernel(disks):
    """The second kernel of the compatibility matrix: bookworm's 6.1."""
    log, checksums, stats = boot("linux-6.1", disks, guest=ivm.GUEST_6_1)
    assert "Linux version 6.1." in log
    assert_healthy(log, kernel="6.1")
    assert "DMA domain TLB invalidation policy: lazy mode" in log
    assert_read_everything(disks, checksums)
    assert stats["faults"] == 0
    assert stats["events-logged"] == 0
    assert stats["page-walks"] > 1000
    assert stats["interrupts-remapped"] > 0


def test_x2apic_interrupt_destinations(disks):
    """xtsup=on with an x2APIC CPU: Linux runs the IOMMU in XT mode (32-bit
    destinations in the IRTEs, its own interrupt through INTCAPXT)."""
    log, checksums, stats = boot("xtsup", disks, props=["xtsup=on"],
                                 extra_args=["-cpu", "qemu64,+x2apic"])
    assert_healthy(log)
    assert "AMD-Vi: X2APIC enabled" in log
    assert "x2apic enabled" in log.lower()
    assert_read_everything(disks, checksums)
    assert stats["interrupts-remapped"] > 0
    assert stats["interrupts-blocked"] == 0
