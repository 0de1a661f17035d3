"""Seed inputs for QEMU's generic fuzzer (scripts/fuzz-qemu), written in its
input format (tests/qtest/fuzz/generic_fuzz.c): commands separated by
"FUZZ", each an opcode byte and the opcode's C struct, padding included.

The "disks" seeds start the IOMMU and both disk controllers as a driver
would and make each fetch a command, so that the fuzzer begins where DMA
goes through the IOMMU instead of having to find that by itself (ten
minutes from nothing reached no DMA at all). Every DMA read is answered
with a pattern: all ones (a device table entry the IOMMU rejects: every
DMA refused) or all zeros (entries not valid: DMA passes untranslated).

The "ats" seeds turn on q35's MMCONFIG (the MCH's PCIEXBAR register) so
that ioguard-nic's ATS capability, in extended configuration space, can be
written; then they enable ATS, the IOMMU with its command buffer, and run
a test-engine DMA, so that the NIC's translation cache and the
device-IOTLB invalidations it listens for are where the fuzzer starts. A
third pattern makes every device table entry valid and translating (mode
1, root at DEVICE_TABLE), so that the walks go on into page tables whose
entries are its first word.

    python3 scripts/qemu_fuzz_seeds.py disks|ats|sva DIR
"""

import struct
import sys
from pathlib import Path

SEPARATOR = b"FUZZ"
OP_WRITE, OP_PCI_WRITE, OP_ADD_DMA_PATTERN, OP_CLOCK_STEP = 3, 5, 7, 9
WORD, LONG, QUAD = 1, 2, 3

# The n-th fuzzed memory region, in address order, of the "disks"
# configuration (found with -trace on writes to each index).
AHCI, NVME, IOMMU = 0, 1, 4

DEVICE_TABLE = 0x100000
AHCI_CLB, AHCI_FB = 0x200000, 0x201000
NVME_ASQ, NVME_ACQ = 0x300000, 0x301000


def pci_write(device, offset, value, size=LONG):
    # struct { uint8_t size, base, offset; uint32_t value; }
    return bytes([OP_PCI_WRITE]) + struct.pack("<BBBxI", size, device, offset,
                                               value)


def write(region, offset, value, size=LONG):
    # struct { uint8_t size, base; uint32_t offset; uint64_t value; }
    return bytes([OP_WRITE]) + struct.pack("<BBxxIQ", size, region, offset,
                                           value)


def dma_pattern(*words):
    # struct { uint8_t index, stride; } and the pattern: each DMA read gets
    # it from its start (a device table entry all four words, a page table
    # entry the first)
    return bytes([OP_ADD_DMA_PATTERN, 0, 0]) + struct.pack(
        f"<{len(words)}Q", *words)


def clock_step():
    return bytes([OP_CLOCK_STEP])


def disks(byte):
    return [
        dma_pattern(int.from_bytes(bytes([byte]) * 8, "little")),
        # AMD-Vi: the device table (2 MiB, every requester), then IommuEn
        write(IOMMU, 0x0000, DEVICE_TABLE | 0x1ff, QUAD),
        write(IOMMU, 0x0018, 1, QUAD),
        # AHCI port 0: AE, the command list and FIS area, FRE and ST, slot 0
        write(AHCI, 0x04, 0x80000000),
        write(AHCI, 0x100, AHCI_CLB),
        write(AHCI, 0x108, AHCI_FB),
        write(AHCI, 0x118, 0x10),
        write(AHCI, 0x118, 0x11),
        write(AHCI, 0x138, 1),
        clock_step(),
        # NVMe: the admin queues, CC.EN, the admin submission doorbell
        write(NVME, 0x24, 0x001f001f),
        write(NVME, 0x28, NVME_ASQ, QUAD),
        write(NVME, 0x30, NVME_ACQ, QUAD),
        write(NVME, 0x14, 0x00460001),
        write(NVME, 0x1000, 1),
        clock_step(),
    ]


# The "ats" configuration's fuzzed PCI devices (the IOMMU's function, the
# NIC, the MCH) and its MMIO regions once MMCONFIG is on (MMCONFIG, the
# NIC, the IOMMU), by index as above.
MCH = 2
ECAM, ATS_NIC, ATS_IOMMU = 0, 1, 2
MCH_PCIEXBAR = 0x60
MMCONFIG = 0xb0000000
NIC_CONFIG = 5 << 15            # 00:05.0 in MMCONFIG
NIC_ATS_CONTROL = 0x106         # the ATS capability at 0x100, its control
ATS_ENABLE = 0x8000
CMD_BUF = 0x400000
# V, TV, mode 1, the page table at DEVICE_TABLE, IR and IW
TRANSLATING_DTE = 1 | 2 | (1 << 9) | DEVICE_TABLE | (3 << 61)


# The "sva" configuration adds PASID (at 0x108) and PRI (at 0x110) to the
# NIC, and guest translation with the PPR log to the IOMMU.
NIC_PASID_CONTROL = 0x108 + 6
NIC_PRI_CONTROL, NIC_PRI_ALLOC = 0x110 + 4, 0x110 + 0xc
PPR_LOG = 0x500000
# V, TV, GV, GIoV, PPR, the GCR3 table at DEVICE_TABLE, IR and IW; the
# same pattern is every GCR3 and v2 entry read (present, R/W, U/S).
GUEST_DTE = 1 | 2 | (1 << 52) | (1 << 54) | (1 << 55) | (3 << 61)
GUEST_DTE_Q1 = ((DEVICE_TABLE >> 15) & 0xffff) << 16


def sva(*pattern):
    return ats(*pattern)[:-4] + [
        # PASIDs and PRI on, 32 requests
        write(ECAM, NIC_CONFIG + NIC_PASID_CONTROL, 1, WORD),
        write(ECAM, NIC_CONFIG + NIC_PRI_ALLOC, 32),
        write(ECAM, NIC_CONFIG + NIC_PRI_CONTROL, 1, WORD),
        # the PPR log (256 entries); IommuEn, CmdBufEn, PPRLogEn, PPRIntEn,
        # PPREn, GTEn
        write(ATS_IOMMU, 0x0038, PPR_LOG | (8 << 56), QUAD),
        write(ATS_IOMMU, 0x0018,
              1 | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 15) | (1 << 16),
              QUAD),
        # the test engine reads 8 KiB at 0x1000 with PASID 5
        write(ATS_NIC, 0xa4, (1 << 31) | 5),
        write(ATS_NIC, 0x80, 0x1000),
        write(ATS_NIC, 0x88, 0x2000),
        write(ATS_NIC, 0x90, 1),
        clock_step(),
    ]


def ats(*pattern):
    return [
        dma_pattern(*pattern),
        # MCH PCIEXBAR: MMCONFIG at 0xb0000000, 256 buses, enabled
        pci_write(MCH, MCH_PCIEXBAR, MMCONFIG | 1),
        # the NIC's ATS on
        write(ECAM, NIC_CONFIG + NIC_ATS_CONTROL, ATS_ENABLE, WORD),
        # AMD-Vi: the device table, a command buffer of 256 entries, then
        # IommuEn and CmdBufEn, and a command
        write(ATS_IOMMU, 0x0000, DEVICE_TABLE | 0x1ff, QUAD),
        write(ATS_IOMMU, 0x0008, CMD_BUF | (8 << 56), QUAD),
        write(ATS_IOMMU, 0x0018, 1 | (1 << 12), QUAD),
        write(ATS_IOMMU, 0x2008, 0x10, QUAD),
        clock_step(),
        # ioguard-nic's test engine: read 8 KiB at 0x1000
        write(ATS_NIC, 0x80, 0x1000),
        write(ATS_NIC, 0x88, 0x2000),
        write(ATS_NIC, 0x90, 1),
        clock_step(),
    ]


SEEDS = {
    "disks": {"refused": disks(0xff), "untranslated": disks(0x00)},
    "ats": {"refused": ats(2**64 - 1), "untranslated": ats(0),
            "translated": ats(TRANSLATING_DTE, 0, 0, 0)},
    "sva": {"refused": sva(2**64 - 1), "untranslated": sva(0),
            "guest": sva(GUEST_DTE, GUEST_DTE_Q1, 0, 0)},
}


def main(config, out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, commands in SEEDS.get(config, {}).items():
        (out / name).write_bytes(SEPARATOR.join(commands))


if __name__ == "__main__":
    main(*sys.argv[1:])
