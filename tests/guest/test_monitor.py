"""Guest tests of what the monitor says about a running Linux guest:
query-ioguard-mappings for the NVMe disk and the NIC equals what an
independent walk of the guest's own I/O page tables (read straight from
guest RAM) says, before and after traffic, for v1 tables and for the v2
tables of amd_iommu=pgtbl_v2; and the DMA verifier flags a
device that reads a buffer after its driver unmapped it in lazy mode,
while in strict mode the same read faults."""

import re
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import guest_protocol as gp  # noqa: E402
import ioguard_vm as ivm  # noqa: E402

WORK = ivm.BUILD / "tests" / "guest"
NIC_ADDR = "0x5"
NIC = "00:05.0"
NVME = "01:00.0"    # behind the root port at 00:02.0

PTE_PR, PTE_IR, PTE_IW = 1, 1 << 61, 1 << 62
PTE_ADDR = 0x000ffffffffff000


def u64(ram, addr):
    ram.seek(addr)
    return struct.unpack("<Q", ram.read(8))[0]


def level_size(level):
    return 1 << (12 + 9 * (level - 1))


def large_page_size(pte):
    """NextLevel=7: 2^(n+1) bytes, n the lowest 0 bit of the address."""
    n = 12
    while (pte >> n) & 1:
        n += 1
    return 1 << (n + 1)


def guest_table_ranges(ram, root, mode, ir, iw):
    """Every leaf of the v1 tables at root, coalesced as the IOMMU must:
    (iova, last, target, read, write), in IOVA order. Written from the
    AMD-Vi spec, independently of the engine."""
    leaves = []

    def walk(table, level, base, last, read, write):
        for i in range(512 if level < 6 else 128):
            start = base + i * level_size(level)
            if start > last:
                break
            pte = u64(ram, table + 8 * i)
            if not pte & PTE_PR:
                continue
            r, w = read and bool(pte & PTE_IR), write and bool(pte & PTE_IW)
            next_level = (pte >> 9) & 7
            end = min(last, start + level_size(level) - 1)
            if next_level in (0, 7):
                size = (level_size(level) if next_level == 0
                        else large_page_size(pte))
                target = (pte & PTE_ADDR & ~(size - 1)) + (start & (size - 1))
                if r or w:
                    leaves.append((start, end, target, r, w))
            else:
                walk(pte & PTE_ADDR, next_level, start,
                     min(end, start + level_size(next_level + 1) - 1), r, w)

    walk(root, mode, 0, (1 << (12 + 9 * mode)) - 1 if mode < 6 else 2**64 - 1,
         ir, iw)
    return coalesce(leaves)


def compare_with_guest_tables(vm, ram, requester, dma="translated"):
    """query-ioguard-mappings for requester against the guest's tables
    (v1, or PASID 0's v2 tables for dma "guest-translated"); returns the
    ranges."""
    dev = vm.cmd("query-ioguard-device", requester=requester)
    assert dev["dma"] == dma, dev
    ram.seek(dev["dte-address"])
    q0, q1, q2, _ = struct.unpack("<4Q", ram.read(32))
    mode, root = (q0 >> 9) & 7, q0 & PTE_ADDR
    assert (mode, root) == (dev["mode"], dev["page-table-root"])
    if dma == "guest-translated":
        assert mode == 0, "pgtbl_v2 has no host tables"
        expected = guest_v2_ranges(ram, q0, q1, q2)
    else:
        expected = guest_table_ranges(ram, root, mode, bool(q0 >> 61 & 1),
                                      bool(q0 >> 62 & 1))
    got = vm.cmd("query-ioguard-mappings", requester=requester,
                 **{"max-ranges": 65536})
    assert not got["truncated"] and got["malformed"] == 0
    assert [(r["iova"], r["last"], r["target"], r["read"], r["write"])
            for r in got["ranges"]] == expected
    return expected


V2_PRESENT, V2_RW, V2_USER, V2_PS = 1, 2, 4, 0x80


def guest_v2_ranges(ram, q0, q1, q2):
    """Every page that requests without a PASID reach through PASID 0's
    guest (v2, x86-64 format) tables of a DTE with GV and GIoV and no host
    tables (Linux's amd_iommu=pgtbl_v2), coalesced as the IOMMU must.
    Written from the AMD-Vi and x86-64 specs, independently of the
    engine."""
    gcr3 = ((q0 >> 58 & 7) << 12 | (q1 >> 16 & 0xffff) << 15 |
            (q1 >> 43 & 0x1fffff) << 31)
    table = gcr3
    for _ in range((q0 >> 56 & 3) + 1):    # GLX: levels below the root
        entry = u64(ram, table)            # index 0 at each: PASID 0
        assert entry & 1, "PASID 0 has no GCR3 entry"
        table = entry & PTE_ADDR
    levels = 5 if q2 >> 54 & 3 == 1 else 4
    ir, iw = bool(q0 >> 61 & 1), bool(q0 >> 62 & 1)
    leaves = []

    def walk(table, level, base, writable, user):
        for i in range(512):
            pte = u64(ram, table + 8 * i)
            if not pte & V2_PRESENT:
                continue
            start = base + i * level_size(level)
            w, u = writable and bool(pte & V2_RW), user and bool(pte & V2_USER)
            if level == 1 or pte & V2_PS:
                size = level_size(level)
                if u and (ir or (w and iw)):
                    leaves.append((start, start + size - 1,
                                   pte & PTE_ADDR & ~(size - 1), ir, w and iw))
            else:
                walk(pte & PTE_ADDR, level - 1, start, w, u)

    walk(table, levels, 0, True, True)
    return coalesce(leaves)


def coalesce(leaves):
    """Leaves in IOVA order joined where contiguous in both address spaces
    with the same permissions."""
    ranges = []
    for leaf in leaves:
        if ranges:
            iova, last, target, r, w = ranges[-1]
            if (last + 1 == leaf[0] and target + (last - iova) + 1 == leaf[2]
                    and (r, w) == leaf[3:]):
                ranges[-1] = (iova, leaf[1], target, r, w)
                continue
        ranges.append(leaf)
    return ranges


@pytest.mark.parametrize("tables", ["v1", "v2"])
def test_mappings_match_the_guest_tables_before_and_after_traffic(tables):
    """v2: amd_iommu=pgtbl_v2 with guest-translation=on; the answer is
    that of PASID 0's tables, which requests without a PASID use."""
    WORK.mkdir(parents=True, exist_ok=True)
    image = WORK / "nvme-monitor.img"
    disk = ivm.nvme_behind_root_port(image, ivm.make_disk(image, 16, seed=31))
    ram_path = Path("/dev/shm") / f"ioguard-monitor-ram-{id(disk)}"
    v2 = tables == "v2"
    dma = "guest-translated" if v2 else "translated"
    vm = ivm.Vm(ivm.ioguard_args(*(["guest-translation=on"] if v2 else [])),
                [disk], workdir=WORK / f"monitor-mappings-{tables}",
                append=gp.kernel_params(pause=20, net="10.0.2.15/24",
                                        nicloop="1500:500") +
                (" amd_iommu=pgtbl_v2" if v2 else ""),
                extra_args=[*ivm.nic("user,id=n0", NIC_ADDR),
                            "-object", "memory-backend-file,id=ram0,size=1G,"
                                       f"mem-path={ram_path},share=on",
                            "-machine", "memory-backend=ram0"])
    try:
        with vm, open(ram_path, "rb") as ram:
            assert vm.wait_for("IOGUARD-PAUSE", timeout=600), vm.log()[-2000:]
            vm.cmd("stop")
            before = {r: compare_with_guest_tables(vm, ram, r, dma)
                      for r in (NVME, NIC)}
            translations = vm.stats()["translations"]
            vm.cmd("cont")
            assert vm.wait_for("IOGUARD-DONE", timeout=900)
            vm.cmd("stop")
            after = {r: compare_with_guest_tables(vm, ram, r, dma)
                     for r in (NVME, NIC)}
            assert vm.stats()["translations"] > translations + 1000
        assert ivm.Vm.checksums(vm)["nvme0n1"] == disk.sha256
        # NVMe maps its queues at probe; the NIC maps nothing until eth0 is
        # up, then its rings and receive pages stay mapped.
        assert before[NVME] and after[NVME]
        assert before[NIC] == [] and len(after[NIC]) > 2
    finally:
        ram_path.unlink(missing_ok=True)


def run_after_unmap(name, append=""):
    guest_errors = WORK / name / "guest-errors.log"
    vm = ivm.Vm(ivm.ioguard_args("verifier=on"), [], workdir=WORK / name,
                append=f"{gp.kernel_params(dmatest='after-unmap')} {append}",
                extra_args=[*ivm.nic("user,id=n0", NIC_ADDR),
                            "-d", "guest_errors", "-D", str(guest_errors)])
    with vm:
        assert vm.wait_for("IOGUARD-DONE", timeout=900), vm.log()[-2000:]
        faults = vm.cmd("query-ioguard-faults")[0]
    log = vm.log()
    results = [t for t in gp.parse_console_log(log).dma_tests
               if t.kind == "after-unmap"]
    assert results, log[-2000:]
    return log, results[0].fields, faults, guest_errors.read_text()


def test_verifier_flags_use_after_unmap_in_lazy_mode():
    log, result, faults, errors = run_after_unmap("monitor-verifier-lazy")
    assert "DMA domain TLB invalidation policy: lazy mode" in log
    # As on hardware: the stale IOTLB entry lets the read through, and the
    # guest hears nothing of it.
    assert result["first"] == "ok" and result["second"] == "ok"
    assert result["same_data"] == "1"
    assert "Event logged" not in log
    assert faults["verifier"]
    findings = [f for f in faults["faults"] if f["delivery"] == "not-reported"]
    assert len(findings) == 1, faults
    f = findings[0]
    assert f["reason"] == "use-after-unmap"
    assert f["requester"] == NIC
    assert f["qom-path"].startswith("/machine/peripheral")
    assert f["iova"] & ~0xfff == int(result["iova"], 16)
    assert f["stale-target"] & ~0xfff == int(result["phys"], 16)
    assert f["access"] == "read" and "current-target" not in f
    assert re.search(r"ioguard-iommu: DMA verifier: requester 00:05.0 read at "
                     rf"IOVA {result['iova'][:-3]}\w+ after it was unmapped "
                     r"\(use after unmap\)", errors), errors


def test_same_dma_faults_in_strict_mode():
    log, result, faults, errors = run_after_unmap("monitor-verifier-strict",
                                                  "iommu.strict=1")
    assert "DMA domain TLB invalidation policy: strict mode" in log
    assert result["first"] == "ok" and result["second"] == "error"
    iova = int(result["iova"], 16)
    assert re.search(r"AMD-Vi: Event logged \[IO_PAGE_FAULT "
                     rf"domain=0x[0-9a-f]+ address={hex(iova)} "
                     r"flags=0x0000\]", log), "no IO_PAGE_FAULT"
    assert not [f for f in faults["faults"] if f["delivery"] == "not-reported"]
    fault = [f for f in faults["faults"] if f["requester"] == NIC]
    assert fault and fault[0]["reason"] == "not-present"
    assert fault[0]["iova"] == iova and fault[0]["delivery"] == "logged"
    assert "DMA verifier" not in errors
