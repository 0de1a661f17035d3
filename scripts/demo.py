"""The main job: boot Linux on q35 with 6 GiB, ioguard-iommu and ioguard-nic;
read an NVMe disk (behind a PCIe root port) and an AHCI disk through the
IOMMU, fetch a file over the NIC and send frames round its loopback, have
the NIC DMA to an address that was never mapped and read a buffer after its
driver unmapped it; check what the guest read and show what the IOMMU did
and saw (statistics, fault records, what a device can reach, its DTE)."""

import re
import sys

import guest_protocol as gp
import ioguard_vm as ivm

GUEST_LINES = re.compile(
    r"AMD-Vi|iommu|IOMMU|DMA domain|Default domain|Firmware Bug|Event logged|"
    r"nvme nvme0|ata1.00: ATA|Completion-Wait|ioguard_nic|bounce buffering")


def main():
    work = ivm.BUILD / "demo"
    work.mkdir(parents=True, exist_ok=True)
    print("== Preparing two disks of seeded random data (32 MiB each)")
    nvme_sum = ivm.make_disk(work / "nvme.img", 32, seed=1)
    ahci_sum = ivm.make_disk(work / "ahci.img", 32, seed=2)
    disks = [ivm.nvme_behind_root_port(work / "nvme.img", nvme_sum),
             ivm.ahci(work / "ahci.img", ahci_sum)]

    server = ivm.FileServer(work / "http", 4 << 20, seed=3)

    print("== Booting Debian's Linux on q35 (6 GiB) with -device ioguard-iommu "
          "and -device ioguard-nic (TCG)")
    vm = ivm.Vm(ivm.ioguard_args("verifier=on"), disks, memory="6G",
                # tx-copybreak 0: the driver maps every frame it sends where
                # it lies, above 4 GiB or not, instead of copying it.
                append=gp.kernel_params(
                    net="10.0.2.15/24", fetch=server.url, copybreak=0,
                    nicloop="1500:2000",
                    dmatest=["write:0x10000:4096:0xa5", "after-unmap"]),
                workdir=work / "vm", extra_args=ivm.nic())
    with vm:
        if not vm.wait_for("IOGUARD-DONE", timeout=900):
            print("The guest did not finish; its log is in", vm.serial)
            return 1
        hmp = {c: vm.cmd("human-monitor-command", **{"command-line": c})
               for c in ("info ioguard-stats", "info ioguard-faults",
                         "info ioguard-mappings 01:00.0",
                         "info ioguard-device 00:05.0")}

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

    log = vm.log()
    guest = gp.parse_console_log(log)
    fetched = guest.fetches[0] if guest.fetches else None
    good = fetched is not None and fetched.sha256 == server.sha256
    ok &= good
    server.close()
    print(f"  {server.url} over ioguard-nic  "
          f"{(fetched.sha256 or 'failed') if fetched else 'not fetched'}  "
          f"{'OK' if good else 'MISMATCH, expected ' + server.sha256}")

    print("\n== ioguard-nic: a 32-bit bus master reaching memory above 4 GiB")
    for r in guest.nic_loops:
        print(f"  loopback {r.ifname} {r.frame_bytes} sent={r.sent} "
              f"received={r.received} corrupt={r.corrupt} lost={r.lost} "
              f"duplicate={r.duplicate}")
    stats_nic = guest.nic_stats_of("eth0")
    for k in ("rx_packets", "tx_packets", "buffers_above_4g", "dma_errors"):
        print(f"  {k:<18} {stats_nic.get(k, '?'):>10}")
    swiotlb = guest.swiotlb
    print("  guest swiotlb (bounce buffers): " +
          (f"nslabs={swiotlb.nslabs} used_hiwater={swiotlb.used_hiwater} "
           f"bounced={swiotlb.bounced}" if swiotlb else "?"))

    print("\n== The NIC asked to DMA to 0x10000, which was never mapped, and "
          "read a buffer after its driver unmapped it (lazy mode)")
    for line in log.splitlines():
        if "IOGUARD-DMATEST" in line or "IO_PAGE_FAULT" in line or \
           "DMA error" in line:
            print("  " + line.strip())

    for command, title in (
            ("info ioguard-stats", "What ioguard-iommu did, per requester "
             "(QMP query-ioguard-stats)"),
            ("info ioguard-faults", "Its fault records, with the DMA "
             "verifier's finding (QMP query-ioguard-faults)"),
            ("info ioguard-mappings 01:00.0", "What the NVMe controller can "
             "reach now (QMP query-ioguard-mappings)"),
            ("info ioguard-device 00:05.0", "The NIC's device-table entry "
             "and interrupt remapping table (QMP query-ioguard-device)")):
        print(f"\n== {title}: HMP {command}")
        print("  " + hmp[command].rstrip().replace("\n", "\n  "))
    print(f"\nGuest log: {vm.serial}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
