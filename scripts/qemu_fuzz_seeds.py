"""Seed inputs for QEMU's generic fuzzer (scripts/fuzz-qemu), written in its
input format (tests/qtest/fuzz/generic_fuzz.c): commands separated by
"FUZZ", each an opcode byte and the opcode's C struct, padding included.

The "disks" seeds start the IOMMU and both disk controllers as a driver
would and make each fetch a command, so that the fuzzer begins where DMA
goes through the IOMMU instead of having to find that by itself (ten
minutes from nothing reached no DMA at all). Every DMA read is answered
with a pattern: all ones (a device table entry the IOMMU rejects: every
DMA refused) or all zeros (entries not valid: DMA passes untranslated).

    python3 scripts/qemu_fuzz_seeds.py disks DIR
"""

import struct
import sys
from pathlib import Path

SEPARATOR = b"FUZZ"
OP_WRITE, OP_ADD_DMA_PATTERN, OP_CLOCK_STEP = 3, 7, 9
LONG, QUAD = 2, 3

# The n-th fuzzed memory region, in address order, of the "disks"
# configuration (found with -trace on writes to each index).
AHCI, NVME, IOMMU = 0, 1, 4

DEVICE_TABLE = 0x100000
AHCI_CLB, AHCI_FB = 0x200000, 0x201000
NVME_ASQ, NVME_ACQ = 0x300000, 0x301000


def write(region, offset, value, size=LONG):
    # struct { uint8_t size, base; uint32_t offset; uint64_t value; }
    return bytes([OP_WRITE]) + struct.pack("<BBxxIQ", size, region, offset,
                                           value)


def dma_pattern(byte):
    # struct { uint8_t index, stride; } and the pattern
    return bytes([OP_ADD_DMA_PATTERN, 0, 0]) + bytes([byte]) * 8


def clock_step():
    return bytes([OP_CLOCK_STEP])


def disks(pattern):
    return [
        dma_pattern(pattern),
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


SEEDS = {
    "disks": {"refused": disks(0xff), "untranslated": disks(0x00)},
}


def main(config, out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, commands in SEEDS.get(config, {}).items():
        (out / name).write_bytes(SEPARATOR.join(commands))


if __name__ == "__main__":
    main(*sys.argv[1:])
