"""The main job: boot Linux on q35 with ioguard-iommu, read an NVMe disk
(behind a PCIe root port) and an AHCI disk through it, check what the guest
read, and show what the IOMMU did."""

import re
import sys

import ioguard_vm as ivm

GUEST_LINES = re.compile(
    r"AMD-Vi|iommu|IOMMU|DMA domain|Default domain|Firmware Bug|Event logged|"
    r"nvme nvme0|ata1.00: ATA|Completion-Wait")


def main():
    work = ivm.BUILD / "demo"
    work.mkdir(parents=True, exist_ok=True)
    print("== Preparing two disks of seeded random data (32 MiB each)")
    nvme_sum = ivm.make_disk(work / "nvme.img", 32, seed=1)
    ahci_sum = ivm.make_disk(work / "ahci.img", 32, seed=2)
    disks = [ivm.nvme_behind_root_port(work / "nvme.img", nvme_sum),
             ivm.ahci(work / "ahci.img", ahci_sum)]

    print("== Booting Debian's Linux on q35 with -device ioguard-iommu (TCG)")
    vm = ivm.Vm(ivm.ioguard_args(), disks, workdir=work / "vm")
    with vm:
        if not vm.wait_for("IOGUARD-DONE", timeout=900):
            print("The guest did not finish; its log is in", vm.serial)
            return 1
        stats = vm.stats()

    print("\n== What the guest's kernel said about the IOMMU")
    for line in vm.log().splitlines():
        if GUEST_LINES.search(line):
            print("  " + line.strip())

    print("\n== What the guest read (sha256), checked against the images")
    ok = True
    read = vm.checksums()
    for d in disks:
        got = read.get(d.guest_name)
        good = got == d.sha256
        ok &= good
        print(f"  /dev/{d.guest_name:<8} {got or 'not read':<64}  "
              f"{'OK' if good else 'MISMATCH, expected ' + d.sha256}")

    print("\n== What ioguard-iommu did (qom-get /machine/peripheral/iommu stats)")
    print(ivm.format_stats(stats))
    print(f"\nGuest log: {vm.serial}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
