"""Guest tests of ioguard-nic and its Linux driver behind ioguard-iommu:
a file fetched over -netdev user and frames round internal loopback with
their checksums; a 6 GiB guest whose buffers above 4 GiB need no bounce
buffers with the IOMMU and do without it; a test-engine DMA to an address
never mapped, blocked and logged; and the no-scatter/gather device."""

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import guest_protocol as gp  # noqa: E402
import ioguard_vm as ivm  # noqa: E402

WORK = ivm.BUILD / "tests" / "guest"
NIC_ADDR = "0x5"
NIC_BDF = "0000:00:05.0"


@pytest.fixture(scope="module")
def http_file():
    """(url as the guest sees it, sha256) of a 3 MiB file on the host."""
    server = ivm.FileServer(WORK / "http", 3 << 20, seed=21)
    yield server.url, server.sha256
    server.close()


def run(name, iommu=True, memory="1G", append="", nic_props=(),
        netdev="user,id=n0", props=()):
    """Boots with the NIC and runs init with append; returns what the
    guest printed (a guest_protocol.GuestOutput), its log and the IOMMU's
    statistics."""
    vm = ivm.Vm(ivm.ioguard_args(*props) if iommu else [], [],
                append=append, memory=memory, workdir=WORK / name,
                extra_args=ivm.nic(netdev, NIC_ADDR, nic_props))
    with vm:
        finished = vm.wait_for("IOGUARD-DONE", timeout=900)
        stats = vm.stats() if iommu else None
    log = vm.log()
    assert finished, f"guest did not finish, see {vm.serial}"
    return gp.parse_console_log(log), log, stats


def assert_loopback_lossless(guest, frames):
    runs = guest.nic_loops_of("eth0")
    assert [r.frame_bytes for r in runs] == frames, runs
    for r in runs:
        assert r.sent > 0
        assert r.received == r.sent, r
        assert r.corrupt == 0 and r.lost == 0, r
        assert r.sha256 == r.sent_sha256, r


def assert_no_iommu_faults(log):
    for bad in ("Event logged", "DMA error", "Completion-Wait loop timed out"):
        assert bad not in log, bad


def test_fetch_and_loopback_behind_ioguard(http_file):
    url, sha = http_file
    guest, log, stats = run("nic-user", append=gp.kernel_params(
        net="10.0.2.15/24", fetch=url, nicloop=["1500:2000", "64:2000"]))
    # The driver bound to the NIC, which is behind the IOMMU.
    assert f"pci {NIC_BDF}: Adding to iommu group" in log
    assert re.search(rf"ioguard_nic {NIC_BDF}.*eth0", log), "driver not bound"
    fetched = guest.fetched(url)
    assert fetched and not fetched.failed, "fetch failed"
    assert fetched.sha256 == sha and fetched.size == 3 << 20
    assert_loopback_lossless(guest, [1500, 64])
    assert_no_iommu_faults(log)
    s = guest.nic_stats_of("eth0")
    assert s["rx_packets"] >= 2000 + 2000 + (3 << 20) // 1500
    # By default every frame was copied into a premapped buffer: no map.
    assert s["tx_copied"] >= 2000 + 2000
    assert s["dma_errors"] == 0 and s["device_dma_errors"] == 0
    # The NIC's DMA went through the page tables.
    assert stats["translations"] > 0 and stats["faults"] == 0


@pytest.mark.parametrize("iommu", [True, False], ids=["ioguard", "no-iommu"])
def test_6g_no_bounce_buffers(http_file, iommu):
    """The headline: with 6 GiB the driver's buffers sit above 4 GiB. Behind
    ioguard the 32-bit NIC reaches them directly and the swiotlb is never
    used; without an IOMMU every packet goes through bounce buffers.
    tx-copybreak 0: every frame sent is mapped where it is, not copied."""
    url, sha = http_file
    guest, log, _ = run("nic-6g-" + ("ioguard" if iommu else "none"),
                        iommu=iommu, memory="6G", append=gp.kernel_params(
                            net="10.0.2.15/24", fetch=url, copybreak=0,
                            nicloop="1500:2000", dmatest="overrun"))
    assert gp.Copybreak("eth0", 0) in guest.copybreaks
    fetched = guest.fetched(url)
    assert fetched and fetched.sha256 == sha
    assert_loopback_lossless(guest, [1500])
    s = guest.nic_stats_of("eth0")
    assert s["buffers_above_4g"] > 0, "buffers all below 4 GiB: no test"
    swiotlb = guest.swiotlb
    assert swiotlb, "no swiotlb line"
    overrun = guest.dma_tests[0].fields
    # Linux sets up a swiotlb either way with more than 4 GiB.
    assert "PCI-DMA: Using software bounce buffering" in log
    assert swiotlb.nslabs > 0
    if iommu:
        assert swiotlb.used_hiwater == 0 and swiotlb.bounced == 0
        assert overrun["second_page_intact"] == "1"
    else:
        assert swiotlb.used_hiwater > 0 and swiotlb.bounced > 2000
        # Nothing stops a device that writes past its buffer.
        assert overrun["second_page_intact"] == "0"


def test_unmapped_dma_blocked_and_logged():
    guest, log, stats = run("nic-unmapped", append=gp.kernel_params(
        dmatest=["write:0x10000:4096:0xa5", "overrun"]))
    write, overrun = (t.fields for t in guest.dma_tests)
    # The device reports the refused DMA and where.
    assert guest.dma_tests[0].text.startswith("error op=write"), write
    assert write["code"] == "9" and write["addr"] == "0x00010000"
    assert write["done"] == "0"
    # The IOMMU logged it for the NIC's requester; Linux printed it.
    # (flags 0x0020: a write, to a page that is not present)
    assert re.search(rf"ioguard_nic {NIC_BDF}: AMD-Vi: Event logged "
                     r"\[IO_PAGE_FAULT domain=0x[0-9a-f]+ address=0x10000 "
                     r"flags=0x0020\]", log), "no IO_PAGE_FAULT"
    # The driver saw the device's error status.
    assert "DMA error: te-dma at 0x00010000" in log
    # A write running past the end of a mapping: the mapped page is written,
    # the page after it (not mapped) is not.
    iova = int(overrun["iova"], 16)
    assert overrun["done"] == "4096"
    assert int(overrun["err_addr"], 16) == iova + 4096
    assert overrun["first_page_written"] == "1"
    assert overrun["second_page_intact"] == "1"
    # The driver keeps a read-only mapping after its page, so that the write
    # cannot land in someone else's live mapping: a permission fault there.
    assert re.search(rf"ioguard_nic {NIC_BDF}: AMD-Vi: Event logged "
                     r"\[IO_PAGE_FAULT domain=0x[0-9a-f]+ "
                     rf"address={hex(iova + 4096)} flags=0x0070\]", log)
    assert stats["faults"] >= 2
    s = guest.nic_stats_of("eth0")
    assert s["device_dma_errors"] == 2


def test_intx_fallback():
    """With MSI refused by the driver (use_msi=0) the NIC interrupts through
    INTx, remapped by the IOMMU like any IOAPIC interrupt."""
    guest, log, stats = run("nic-intx", append=gp.kernel_params(
        nicparams="use_msi=0", nicloop=["1500:1000", "64:1000"]))
    assert re.search(rf"ioguard_nic {NIC_BDF} eth0: .*INTx", log), \
        "driver did not use INTx"
    assert_loopback_lossless(guest, [1500, 64])
    assert_no_iommu_faults(log)
    assert stats["interrupts-remapped"] > 0


def test_no_scatter_gather_device():
    """sg=off: every packet must be one contiguous buffer. Behind ioguard,
    four separate pages map to one contiguous DMA range the device reads in
    one go, and traffic still flows. tx-copybreak 256: the 1500-byte frames
    are mapped, not copied."""
    guest, log, _ = run("nic-nosg", nic_props=["sg=off"],
                        append=gp.kernel_params(
                            copybreak=256, dmatest="sg:4",
                            nicloop=["1500:1000", "64:1000"]))
    assert gp.Copybreak("eth0", 256) in guest.copybreaks
    sg = guest.dma_tests[0].fields
    assert sg["pages"] == "4" and sg["segments"] == "1", sg
    assert sg["crc_ok"] == "1"
    assert_loopback_lossless(guest, [1500, 64])
    assert_no_iommu_faults(log)
    s = guest.nic_stats_of("eth0")
    assert s["tx_sg_merged"] + s["tx_linearized"] > 0
