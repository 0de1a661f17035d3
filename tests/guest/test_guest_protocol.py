"""The host side of the guest test protocol (scripts/guest_protocol.py),
without a VM: lines as tests/guest/init and its programs print them (taken
from real console logs) parse into their values, lines that do not have
their kind's form do not parse, and the ioguard.* parameters come out as
init reads them."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import guest_protocol as gp  # noqa: E402

SHA_A = "86de7c314e8c2a8d69da00249bf0c783a3850f75689c46965e881044788807d7"
SHA_B = "ffa2e5d87b033ed8ca115b16e400bc901bdfbab3f5ab4ac52f021c4369db1773"


def test_markers():
    assert gp.parse_pause("IOGUARD-PAUSE")
    assert gp.parse_settle("IOGUARD-SETTLE")
    assert gp.parse_done("IOGUARD-DONE")
    assert gp.parse_wait("IOGUARD-WAIT 2") == 2
    assert not gp.parse_pause("IOGUARD-PAUS")
    assert not gp.parse_settle("IOGUARD-SETTL")
    # The hostile guest's end is not init's.
    assert not gp.parse_done("IOGUARD-HOSTILE-DONE seed=7 ops=50000")
    assert gp.parse_wait("IOGUARD-WAIT") is None
    assert gp.parse_wait("IOGUARD-WAIT one") is None


def test_domain_types():
    assert gp.parse_domain_types(
        "IOGUARD-DOMAIN-TYPES       3 DMA-FQ       1 identity ") == \
        {"DMA-FQ": 3, "identity": 1}
    # No IOMMU, no groups
    assert gp.parse_domain_types("IOGUARD-DOMAIN-TYPES ") == {}
    assert gp.parse_domain_types("IOGUARD-DOMAIN-TYPES") is None
    # A type without its count is none
    assert gp.parse_domain_types("IOGUARD-DOMAIN-TYPES DMA-FQ") == {}


@pytest.mark.parametrize("parse, name", [
    (gp.parse_checksum, "IOGUARD-CHECKSUM"),
    (gp.parse_recheck, "IOGUARD-RECHECK"),
    (gp.parse_share_read, "IOGUARD-SHARE-READ"),
    (gp.parse_share_wrote, "IOGUARD-SHARE-WROTE"),
])
def test_checksums(parse, name):
    assert parse(f"{name} nvme0n1 {SHA_A}") == gp.Checksum("nvme0n1", SHA_A)
    assert parse(f"{name} from-host {SHA_B}").sha256 == SHA_B
    assert parse(f"{name} nvme0n1 {SHA_A[:63]}") is None      # short
    assert parse(f"{name} nvme0n1 {SHA_A.upper()}") is None   # not sha256sum's
    assert parse(f"{name} {SHA_A}") is None                    # no name


def test_missing_and_share_failed():
    assert gp.parse_missing("IOGUARD-MISSING nvme0n1") == "nvme0n1"
    assert gp.parse_missing("IOGUARD-MISSING ") is None
    assert gp.parse_share_failed("IOGUARD-SHARE-FAILED hostshare") == \
        "hostshare"
    assert gp.parse_share_failed("IOGUARD-SHARE-FAILED") is None


def test_fetch():
    url = "http://10.0.2.2:44583/blob"
    fetch = gp.parse_fetch(f"IOGUARD-FETCH {url} {SHA_A} 3145728")
    assert fetch == gp.Fetch(url, SHA_A, 3 << 20) and not fetch.failed
    failed = gp.parse_fetch(f"IOGUARD-FETCH {url} failed")
    assert failed == gp.Fetch(url, None, None) and failed.failed
    assert gp.parse_fetch(f"IOGUARD-FETCH {url} {SHA_A}") is None  # no size
    assert gp.parse_fetch(f"IOGUARD-FETCH {url} broken") is None


def test_copybreak():
    assert gp.parse_copybreak("IOGUARD-COPYBREAK eth0 256") == \
        gp.Copybreak("eth0", 256)
    assert gp.parse_copybreak("IOGUARD-COPYBREAK eth0") is None
    assert gp.parse_copybreak("IOGUARD-COPYBREAK eth0 -1") is None


NICLOOP = ("IOGUARD-NICLOOP eth0 1500 sent=1000 received=1000 corrupt=0 "
           "lost=0 duplicate=0 ns=86888398 pps=11509.0 mibps=16.46 "
           f"sha256={SHA_B} sent_sha256={SHA_B}")


def test_nicloop():
    loop = gp.parse_nicloop(NICLOOP)
    assert loop == gp.NicLoop("eth0", 1500, 1000, 1000, 0, 0, 0, 86888398,
                              11509.0, 16.46, SHA_B, SHA_B)
    assert loop.intact
    lossy = gp.parse_nicloop(
        "IOGUARD-NICLOOP eth0 1500 sent=89 received=25 corrupt=0 lost=975 "
        "duplicate=0 ns=2000512 pps=12496.8 mibps=17.88 "
        f"sha256={SHA_A} sent_sha256={SHA_B}")
    assert lossy.lost == 975 and lossy.received == 25 and not lossy.intact
    # Cut short (by a kernel message on the console, say), or a field gone
    assert gp.parse_nicloop(NICLOOP[:120]) is None
    assert gp.parse_nicloop(NICLOOP.replace(" duplicate=0", "")) is None
    assert gp.parse_nicloop(NICLOOP.replace("eth0 1500", "eth0")) is None


def test_dpdk():
    assert gp.parse_dpdk("IOGUARD-DPDK ports=2 rx=3510208 tx=3510208 "
                         "exit=0") == gp.Dpdk(2, 3510208, 3510208, 0)
    assert gp.parse_dpdk("IOGUARD-DPDK ports=2 rx=0 tx=0") is None
    assert gp.parse_dpdk("IOGUARD-DPDK-ERROR insmod vfio.ko") is None
    out = gp.parse_console_log("IOGUARD-DPDK ports=1 rx=5 tx=6 exit=1\r\n")
    assert out.dpdk == gp.Dpdk(1, 5, 6, 1)


def test_nicstat():
    assert gp.parse_nicstat("IOGUARD-NICSTAT eth0 buffers_above_4g 7181") == \
        gp.NicStat("eth0", "buffers_above_4g", 7181)
    assert gp.parse_nicstat("IOGUARD-NICSTAT eth0 rx_packets") is None
    assert gp.parse_nicstat("IOGUARD-NICSTAT eth0 rx_packets many") is None


def test_dmatest():
    sg = gp.parse_dmatest("IOGUARD-DMATEST sg pages=4 segments=1 crc_ok=1 "
                          "first_iova=0xffb18000")
    assert sg.kind == "sg"
    assert sg.fields == {"pages": "4", "segments": "1", "crc_ok": "1",
                         "first_iova": "0xffb18000"}
    error = gp.parse_dmatest("IOGUARD-DMATEST error op=write code=9 "
                             "addr=0x00010000 done=0")
    assert error.text.startswith("error op=write")
    assert error.fields["addr"] == "0x00010000"     # as the driver wrote it
    unmap = gp.parse_dmatest(
        "IOGUARD-DMATEST after-unmap iova=0xffe7d000 phys=0x39c2000 "
        "first=ok second=error code=9 same_data=0")
    assert unmap.kind == "after-unmap" and unmap.fields["second"] == "error"
    timeout = gp.parse_dmatest("IOGUARD-DMATEST error timeout")
    assert timeout.kind == "error" and timeout.fields == {}
    assert gp.parse_dmatest("IOGUARD-DMATEST") is None


def test_swiotlb():
    assert gp.parse_swiotlb("IOGUARD-SWIOTLB nslabs=32768 used_hiwater=856 "
                            "bounced=3123") == gp.Swiotlb(32768, 856, 3123)
    # grep -c found no trace: init prints nothing after bounced=
    assert gp.parse_swiotlb("IOGUARD-SWIOTLB nslabs=32768 used_hiwater=856 "
                            "bounced=") is None


def test_profile_and_bench():
    assert gp.parse_profile("IOGUARD-PROFILE calls 4096 us 12345.6") == \
        gp.Profile(4096, 12345.6)
    assert gp.parse_profile("IOGUARD-PROFILE calls us 0.0") is None
    assert gp.parse_bench(
        "IOGUARD-BENCH /dev/nvme0n1 1048576 536870912 2345678901") == \
        gp.Bench("/dev/nvme0n1", 1 << 20, 512 << 20, 2345678901, None)
    assert gp.parse_bench(
        "IOGUARD-BENCH /dev/nvme0n1 4096 16777216 99 random").mode == "random"
    assert gp.parse_bench("IOGUARD-BENCH /dev/nvme0n1 4096 16777216") is None


def test_hostile():
    # The hostile guest's lines come through the kernel's log.
    assert gp.parse_hostile_progress(
        "[    2.785186] IOGUARD-HOSTILE seed=7 ops=1000") == \
        gp.HostileProgress(7, 1000)
    assert gp.parse_hostile_done(
        "[    6.227775] IOGUARD-HOSTILE-DONE seed=11 ops=50000") == \
        gp.HostileProgress(11, 50000)
    assert gp.parse_hostile_exit("[    6.243146] IOGUARD-HOSTILE-EXIT 0") == 0
    assert gp.parse_hostile_op("IOGUARD-HOSTILE-OP 4711 nic-dma") == \
        gp.HostileOp(4711, "nic-dma", None)
    assert gp.parse_hostile_op(
        "IOGUARD-HOSTILE-OP 4712 config-write nvme-command").disk_command == \
        "nvme-command"
    assert gp.parse_hostile_progress("IOGUARD-HOSTILE seed=7") is None
    assert gp.parse_hostile_progress(
        "IOGUARD-HOSTILE-DONE seed=11 ops=50000") is None
    assert gp.parse_hostile_done("IOGUARD-HOSTILE-DONE") is None
    assert gp.parse_hostile_exit("IOGUARD-HOSTILE-EXIT") is None
    assert gp.parse_hostile_op("IOGUARD-HOSTILE-OP nic-dma") is None


# A console log as the serial port has it: \r\n, the kernel's lines in
# between, and (as after loadvm) the end of init twice.
CONSOLE_LOG = "\r\n".join([
    "[    1.234567] pci 0000:01:00.0: Adding to iommu group 3",
    "IOGUARD-PAUSE",
    "IOGUARD-DOMAIN-TYPES       3 DMA-FQ ",
    f"IOGUARD-CHECKSUM nvme0n1 {SHA_A}",
    "IOGUARD-MISSING sda",
    "IOGUARD-COPYBREAK eth0 0",
    "IOGUARD-WAIT 1",
    NICLOOP,
    "IOGUARD-DMATEST overrun iova=0xffe56000 phys=0x1500000 done=4096 "
    "err_addr=0xffe57000 first_page_written=1 second_page_intact=1",
    "IOGUARD-NICSTAT eth0 rx_packets 2001",
    "IOGUARD-NICSTAT eth0 rx_packets 2003",
    "IOGUARD-SWIOTLB nslabs=0 used_hiwater=0 bounced=0",
    "IOGUARD-DONE",
    f"IOGUARD-CHECKSUM nvme0n1 {SHA_B}",
    "IOGUARD-SWIOTLB nslabs=1 used_hiwater=1 bounced=1",
    "IOGUARD-DONE",
    "IOGUARD-NICLOOP eth0 64 sent=1000 rec",
    "",
])


def test_console_log():
    out = gp.parse_console_log(CONSOLE_LOG)
    assert (out.times_paused, out.times_settled, out.times_done) == (1, 0, 2)
    assert out.domain_types == {"DMA-FQ": 3}
    assert out.checksums == {"nvme0n1": SHA_B}      # the last
    assert out.missing == ["sda"]
    assert out.copybreaks == [gp.Copybreak("eth0", 0)]
    assert out.waits == [1]
    assert out.nic_loops == [gp.parse_nicloop(NICLOOP)]   # not the cut one
    assert out.nic_loops_of("eth0") == out.nic_loops
    assert out.nic_loops_of("eth0", 1500) == out.nic_loops
    assert out.nic_loops_of("eth0", 64) == out.nic_loops_of("eth1") == []
    assert out.nic_stats_of("eth0") == {"rx_packets": 2003}
    [overrun] = out.dma_tests
    assert overrun.kind == "overrun" and not overrun.text.endswith("\r")
    assert out.swiotlb == gp.Swiotlb(0, 0, 0)      # the first
    assert out.profile is None and out.benches == [] and out.fetches == []
    assert out.hostile_exit is None


def test_benches_and_fetches_by_name():
    out = gp.parse_console_log(
        "IOGUARD-BENCH /dev/vda 1048576 1073741824 900\n"
        "IOGUARD-BENCH /dev/nvme0n1 4096 33554432 800\n"
        "IOGUARD-BENCH /dev/nvme0n1 1048576 1073741824 700\n"
        f"IOGUARD-FETCH http://a/x {SHA_A} 10\n"
        "IOGUARD-FETCH http://a/y failed\n")
    assert [b.ns for b in out.benches_of("/dev/nvme0n1")] == [800, 700]
    assert [b.ns for b in out.benches_of("/dev/nvme0n1", 1 << 20)] == [700]
    assert out.fetched("http://a/y").failed
    assert out.fetched("http://a/z") is None


def test_kernel_params():
    assert gp.kernel_params(pause=5, settle=5, recheck=True) == \
        "ioguard.pause=5 ioguard.settle=5 ioguard.recheck=1"
    # Lists are comma-separated, a tuple's fields colon-separated.
    assert gp.kernel_params(
        nicloop=[(1500, 500), "wait", (1500, 1000, 0)],
        dmatest=["write:0x10000:4096:0xa5", "after-unmap"],
        bench=("nvme0n1", 4096, 1 << 24, "random"), hostile=(11, 50000)) == (
        "ioguard.nicloop=1500:500,wait,1500:1000:0 "
        "ioguard.dmatest=write:0x10000:4096:0xa5,after-unmap "
        "ioguard.bench=nvme0n1:4096:16777216:random ioguard.hostile=11:50000")
    # Nothing to say: left out.
    assert gp.kernel_params(disks=[], hold=60, recheck=False, net=None) == \
        "ioguard.hold=60"


def test_kernel_params_refused():
    with pytest.raises(ValueError, match=r"^ioguard\.pauze=5: init has no "
                                         r"parameter 'pauze' \(it reads "
                                         r"bench, copybreak, "):
        gp.kernel_params(pauze=5)
    with pytest.raises(ValueError, match="ioguard.pauze=None"):
        gp.kernel_params(pauze=None)
    # init reads only digits there: it would not pause at all.
    with pytest.raises(ValueError, match=r"^ioguard\.pause=5s: init would "
                                         r"not read '5s'"):
        gp.kernel_params(pause="5s")
    # A space would end the parameter on the kernel's command line.
    with pytest.raises(ValueError, match="ioguard.fetch=http://a/b c"):
        gp.kernel_params(fetch="http://a/b c")
    with pytest.raises(ValueError, match="ioguard.recheck=2"):
        gp.kernel_params(recheck=2)
