"""The guest test protocol, host side: what the host tells the guest's
init and what the guest reports back. tests/guest/init is its other half.

init reads its instructions from ioguard.NAME=VALUE parameters on the
kernel's command line (kernel_params builds them) and reports on the
serial console in lines that start with IOGUARD- (one parse_* function per
kind of line; parse_console_log reads a whole log). Some of those lines
come from the programs init runs: tests/guest/nictool.cc, readbench.cc and
hostile.cc (whose lines go through the kernel's log, after a timestamp: a
line is found anywhere in a console line). IOGUARD-PAUSE, -SETTLE, -WAIT N
and -DONE are also the cues that hosts wait for with Vm.wait_for
(scripts/ioguard_vm.py).
"""

import re
from dataclasses import dataclass, field

# The parameters init reads: the form of a value it can use (it would take
# pause=5s for no pause at all) and what it does with it.
PARAMETERS = {
    "disks": (r"\S+", "DISK,...: wait for these block devices, then "
                      "checksum each (IOGUARD-CHECKSUM, -MISSING)"),
    "hostile": (r"[0-9:]+", "SEED:OPS[:TRACE_FROM]: only run "
                            "ioguard-hostile, then power off"),
    "nicparams": (r"\S+", "NAME=VALUE,...: ioguard_nic.ko's module "
                          "parameters"),
    "pause": (r"\d+", "SECONDS: the drivers have probed, nothing is read "
                      "yet: IOGUARD-PAUSE, then wait"),
    "share": (r"\S+", "TAG: mount that virtio-9p share, read and write "
                      "files (IOGUARD-SHARE-*)"),
    "settle": (r"\d+", "SECONDS: the disks are read: IOGUARD-SETTLE, then "
                       "wait"),
    "recheck": (r"1", "1: read every disk again with O_DIRECT "
                      "(IOGUARD-RECHECK)"),
    "copybreak": (r"\d+", "BYTES: eth0's tx-copybreak (IOGUARD-COPYBREAK)"),
    "net": (r"\S+", "ADDR/PREFIX: bring eth0 up with that address"),
    "fetch": (r"\S+", "URL,...: fetch each over eth0 (IOGUARD-FETCH)"),
    "nicloop": (r"\S+", "FRAME_BYTES:COUNT[:COPYBREAK] or wait,...: frames "
                        "round internal loopback (IOGUARD-NICLOOP), or "
                        "IOGUARD-WAIT N and wait for a link flap"),
    "dmatest": (r"\S+", "CMD,...: test-engine commands, ':' for spaces "
                        "(IOGUARD-DMATEST)"),
    "sva": (r"1", "1: shared virtual addressing through the NIC's test "
                  "engine, from a process (IOGUARD-SVA)"),
    "profile": (r"\S+", "FUNC,...: time these functions during the benches "
                        "(IOGUARD-PROFILE)"),
    "bench": (r"\S+", "DISK:BLOCK:TOTAL[:random|:write],...: "
                      "ioguard-readbench runs (IOGUARD-BENCH)"),
    "hold": (r"\d+", "SECONDS: stay up after IOGUARD-DONE"),
    "run": (r"[A-Za-z0-9._-]+", "NAME: run /extra/NAME, from an initramfs "
                                "appended to the guest's, then go on"),
    "dpdktime": (r"\d+", "SECONDS: how long /extra/dpdk-testpmd.sh "
                         "forwards (IOGUARD-DPDK)"),
    "seed": (r"\d+", "N: the seed of /extra/nested-vfio.sh's hostile "
                     "guest (IOGUARD-NESTED-HOSTILE)"),
}


def value_text(value):
    """A value as init reads it: a list is comma-separated, a tuple is one
    item's fields colon-separated (nicloop=[(1500, 2000), "wait"] is
    1500:2000,wait), True is 1."""
    if value is True:
        return "1"
    if isinstance(value, list):
        return ",".join(value_text(v) for v in value)
    if isinstance(value, tuple):
        return ":".join(value_text(v) for v in value)
    return str(value)


def kernel_params(**params):
    """The ioguard.NAME=VALUE parameters for init, space-separated, in the
    order given. A parameter that is None, False or an empty list is left
    out. An unknown name, or a value init would not read as given, is a
    ValueError that names it."""
    words = []
    for name, value in params.items():
        text = value_text(value)
        if name not in PARAMETERS:
            raise ValueError(f"ioguard.{name}={text}: init has no parameter "
                             f"{name!r} (it reads "
                             f"{', '.join(sorted(PARAMETERS))})")
        if value is None or value is False or value == []:
            continue
        form, meaning = PARAMETERS[name]
        if not re.fullmatch(form, text):
            raise ValueError(f"ioguard.{name}={text}: init would not read "
                             f"{text!r} (ioguard.{name}={meaning})")
        words.append(f"ioguard.{name}={text}")
    return " ".join(words)


# What init and its programs print, one class per kind of line (where two
# kinds say the same, one class serves both).

@dataclass(frozen=True)
class Checksum:
    """A file or disk and the sha256 of what the guest read or wrote."""
    name: str
    sha256: str


@dataclass(frozen=True)
class Fetch:
    """IOGUARD-FETCH: a file fetched over the NIC, or not (failed)."""
    url: str
    sha256: str | None      # None: the fetch failed
    size: int | None

    @property
    def failed(self):
        return self.sha256 is None


@dataclass(frozen=True)
class Copybreak:
    """IOGUARD-COPYBREAK: the tx-copybreak that ioguard-nictool set and
    read back."""
    ifname: str
    bytes: int


@dataclass(frozen=True)
class NicLoop:
    """IOGUARD-NICLOOP: one run of frames round the NIC's internal loopback
    (ioguard-nictool loop). sha256 is over the payloads received, in
    sequence order, sent_sha256 over those sent."""
    ifname: str
    frame_bytes: int
    sent: int
    received: int
    corrupt: int
    lost: int
    duplicate: int
    ns: int
    pps: float
    mibps: float
    sha256: str
    sent_sha256: str

    @property
    def intact(self):
        """Every frame came back once, unchanged."""
        return (self.corrupt == self.lost == self.duplicate == 0
                and self.sha256 == self.sent_sha256)


@dataclass(frozen=True)
class NicStat:
    """IOGUARD-NICSTAT: one ethtool statistic of the NIC."""
    ifname: str
    name: str
    value: int


@dataclass(frozen=True)
class DmaTest:
    """IOGUARD-DMATEST: the result of one test-engine command, as the NIC's
    driver words it (tests/guest/ioguard-nic/ioguard_nic.c): a first word
    (kind: ok, error, overrun, after-unmap, sg, ring-stop) and NAME=VALUE
    fields, which depend on the command; the values stay text, as the
    driver formats them (addresses as 0x%08x, for one)."""
    text: str
    kind: str
    fields: dict


@dataclass(frozen=True)
class Swiotlb:
    """IOGUARD-SWIOTLB: the guest's bounce buffers: their size in slabs,
    the most ever in use, and the mappings that went through them."""
    nslabs: int
    used_hiwater: int
    bounced: int


@dataclass(frozen=True)
class Profile:
    """IOGUARD-PROFILE: the calls of the ioguard.profile functions and the
    time spent in them."""
    calls: int
    us: float


@dataclass(frozen=True)
class Bench:
    """IOGUARD-BENCH: one ioguard-readbench run: BYTES read (or written) in
    BLOCK_BYTES requests in NS nanoseconds."""
    device: str             # as given to ioguard-readbench: /dev/NAME
    block_bytes: int
    bytes: int
    ns: int
    mode: str | None        # "random", "write" or None (sequential reads)


@dataclass(frozen=True)
class Dpdk:
    """IOGUARD-DPDK: a testpmd run over vfio-pci (tests/guest/
    dpdk-testpmd.sh): the ports it had, the packets all of them received
    and sent, and testpmd's exit status."""
    ports: int
    rx: int
    tx: int
    exit: int


@dataclass(frozen=True)
class HostileProgress:
    """IOGUARD-HOSTILE (every 1000 operations and at the end) and
    IOGUARD-HOSTILE-DONE (at the end): the operations done so far."""
    seed: int
    ops: int


@dataclass(frozen=True)
class HostileOp:
    """IOGUARD-HOSTILE-OP: one operation of the hostile guest, once done
    (traced from ioguard.hostile's TRACE_FROM on), and the disk command
    issued after it, if any."""
    n: int
    kind: str
    disk_command: str | None    # "ahci-command", "nvme-command" or None


def parse_pause(line):
    """IOGUARD-PAUSE: the drivers have probed and nothing is read yet;
    init waits ioguard.pause seconds."""
    return "IOGUARD-PAUSE" in line


def parse_settle(line):
    """IOGUARD-SETTLE: the disks are read; init waits ioguard.settle
    seconds before the workloads."""
    return "IOGUARD-SETTLE" in line


def parse_done(line):
    """IOGUARD-DONE: init is at its end."""
    return "IOGUARD-DONE" in line


def parse_wait(line):
    """IOGUARD-WAIT N: the Nth "wait" of ioguard.nicloop; init waits for
    the host to flap the link. Returns N or None."""
    m = re.search(r"IOGUARD-WAIT (\d+)", line)
    return int(m[1]) if m else None


def parse_domain_types(line):
    """IOGUARD-DOMAIN-TYPES followed by `uniq -c` of the guest's IOMMU
    groups' types ("IOGUARD-DOMAIN-TYPES       3 DMA-FQ       1 identity ",
    "IOGUARD-DOMAIN-TYPES " without groups). Returns {type: groups} or
    None."""
    m = re.search(r"IOGUARD-DOMAIN-TYPES ((?: *\d+ \S+)*)", line)
    if not m:
        return None
    return {kind: int(count)
            for count, kind in re.findall(r"(\d+) (\S+)", m[1])}


def parse_checksum(line):
    """IOGUARD-CHECKSUM DISK SHA256: init read /dev/DISK whole."""
    m = re.search(r"IOGUARD-CHECKSUM (\S+) ([0-9a-f]{64})", line)
    return Checksum(m[1], m[2]) if m else None


def parse_missing(line):
    """IOGUARD-MISSING DISK: /dev/DISK never appeared. Returns DISK or
    None."""
    m = re.search(r"IOGUARD-MISSING (\S+)", line)
    return m[1] if m else None


def parse_recheck(line):
    """IOGUARD-RECHECK DISK SHA256: the second read (ioguard.recheck=1)."""
    m = re.search(r"IOGUARD-RECHECK (\S+) ([0-9a-f]{64})", line)
    return Checksum(m[1], m[2]) if m else None


def parse_share_read(line):
    """IOGUARD-SHARE-READ FILE SHA256: a file of the ioguard.share folder
    as the guest read it."""
    m = re.search(r"IOGUARD-SHARE-READ (\S+) ([0-9a-f]{64})", line)
    return Checksum(m[1], m[2]) if m else None


def parse_share_wrote(line):
    """IOGUARD-SHARE-WROTE FILE SHA256: a file the guest wrote into the
    share."""
    m = re.search(r"IOGUARD-SHARE-WROTE (\S+) ([0-9a-f]{64})", line)
    return Checksum(m[1], m[2]) if m else None


def parse_share_failed(line):
    """IOGUARD-SHARE-FAILED TAG: the share could not be mounted. Returns
    TAG or None."""
    m = re.search(r"IOGUARD-SHARE-FAILED (\S+)", line)
    return m[1] if m else None


def parse_fetch(line):
    """IOGUARD-FETCH URL SHA256 SIZE, or IOGUARD-FETCH URL failed."""
    m = re.search(r"IOGUARD-FETCH (\S+) (?:([0-9a-f]{64}) (\d+)|failed)", line)
    if not m:
        return None
    return Fetch(m[1], m[2], int(m[3]) if m[3] else None)


def parse_copybreak(line):
    """IOGUARD-COPYBREAK IFNAME BYTES."""
    m = re.search(r"IOGUARD-COPYBREAK (\S+) (\d+)", line)
    return Copybreak(m[1], int(m[2])) if m else None


def parse_nicloop(line):
    """IOGUARD-NICLOOP IFNAME FRAME_BYTES sent=N received=N corrupt=N
    lost=N duplicate=N ns=N pps=X mibps=Y sha256=HEX sent_sha256=HEX."""
    m = re.search(r"IOGUARD-NICLOOP (\S+) (\d+) sent=(\d+) received=(\d+) "
                  r"corrupt=(\d+) lost=(\d+) duplicate=(\d+) ns=(\d+) "
                  r"pps=(\d+\.\d+) mibps=(\d+\.\d+) sha256=([0-9a-f]{64}) "
                  r"sent_sha256=([0-9a-f]{64})", line)
    if not m:
        return None
    return NicLoop(m[1], *(int(n) for n in m.group(2, 3, 4, 5, 6, 7, 8)),
                   float(m[9]), float(m[10]), m[11], m[12])


def parse_nicstat(line):
    """IOGUARD-NICSTAT IFNAME NAME VALUE."""
    m = re.search(r"IOGUARD-NICSTAT (\S+) (\S+) (\d+)", line)
    return NicStat(m[1], m[2], int(m[3])) if m else None


def parse_dmatest(line):
    """IOGUARD-DMATEST RESULT, the driver's words for one command."""
    m = re.search(r"IOGUARD-DMATEST (.*)", line)
    if not m:
        return None
    text = m[1]
    words = text.split()
    return DmaTest(text, words[0] if words else "",
                   dict(re.findall(r"(\w+)=(\S+)", text)))


def parse_swiotlb(line):
    """IOGUARD-SWIOTLB nslabs=N used_hiwater=N bounced=N."""
    m = re.search(r"IOGUARD-SWIOTLB nslabs=(\d+) used_hiwater=(\d+) "
                  r"bounced=(\d+)", line)
    return Swiotlb(int(m[1]), int(m[2]), int(m[3])) if m else None


def parse_profile(line):
    """IOGUARD-PROFILE calls N us X."""
    m = re.search(r"IOGUARD-PROFILE calls (\d+) us ([\d.]+)", line)
    return Profile(int(m[1]), float(m[2])) if m else None


def parse_bench(line):
    """IOGUARD-BENCH DEVICE BLOCK_BYTES BYTES NANOSECONDS [random|write]."""
    m = re.search(r"IOGUARD-BENCH (\S+) (\d+) (\d+) (\d+)(?: (random|write))?",
                  line)
    if not m:
        return None
    return Bench(m[1], int(m[2]), int(m[3]), int(m[4]), m[5])


def parse_hostile_progress(line):
    """IOGUARD-HOSTILE seed=S ops=N."""
    m = re.search(r"IOGUARD-HOSTILE seed=(\d+) ops=(\d+)", line)
    return HostileProgress(int(m[1]), int(m[2])) if m else None


def parse_hostile_op(line):
    """IOGUARD-HOSTILE-OP N KIND[ ahci-command| nvme-command]."""
    m = re.search(r"IOGUARD-HOSTILE-OP (\d+) (\S+)(?: (ahci-command|"
                  r"nvme-command))?", line)
    return HostileOp(int(m[1]), m[2], m[3]) if m else None


def parse_hostile_done(line):
    """IOGUARD-HOSTILE-DONE seed=S ops=N: the hostile guest did all its
    operations."""
    m = re.search(r"IOGUARD-HOSTILE-DONE seed=(\d+) ops=(\d+)", line)
    return HostileProgress(int(m[1]), int(m[2])) if m else None


def parse_dpdk(line):
    """IOGUARD-DPDK ports=N rx=N tx=N exit=N."""
    m = re.search(r"IOGUARD-DPDK ports=(\d+) rx=(\d+) tx=(\d+) "
                  r"exit=(\d+)", line)
    return Dpdk(*(int(n) for n in m.groups())) if m else None


def parse_hostile_exit(line):
    """IOGUARD-HOSTILE-EXIT STATUS: ioguard-hostile's exit status. Returns
    STATUS or None."""
    m = re.search(r"IOGUARD-HOSTILE-EXIT (\d+)", line)
    return int(m[1]) if m else None


@dataclass
class GuestOutput:
    """Everything a console log says, in the order the guest said it.
    Where a line can come more than once for the same thing (a guest
    loaded back from a snapshot runs the rest of init again), the dicts
    keep the last, and the single values the first."""
    times_paused: int = 0
    times_settled: int = 0
    times_done: int = 0
    waits: list[int] = field(default_factory=list)
    domain_types: dict[str, int] | None = None
    checksums: dict[str, str] = field(default_factory=dict)     # disk: sha256
    missing: list[str] = field(default_factory=list)            # disks
    rechecks: dict[str, str] = field(default_factory=dict)      # disk: sha256
    share_read: dict[str, str] = field(default_factory=dict)    # file: sha256
    share_wrote: dict[str, str] = field(default_factory=dict)   # file: sha256
    share_failed: list[str] = field(default_factory=list)       # tags
    fetches: list[Fetch] = field(default_factory=list)
    copybreaks: list[Copybreak] = field(default_factory=list)
    nic_loops: list[NicLoop] = field(default_factory=list)
    nic_stats: list[NicStat] = field(default_factory=list)
    dma_tests: list[DmaTest] = field(default_factory=list)
    swiotlb: Swiotlb | None = None
    profile: Profile | None = None
    benches: list[Bench] = field(default_factory=list)
    hostile_progress: list[HostileProgress] = field(default_factory=list)
    hostile_ops: list[HostileOp] = field(default_factory=list)
    hostile_done: HostileProgress | None = None
    hostile_exit: int | None = None
    dpdk: Dpdk | None = None

    def fetched(self, url):
        """The first Fetch of url, or None."""
        return next((f for f in self.fetches if f.url == url), None)

    def nic_loops_of(self, ifname, frame_bytes=None):
        """The NicLoop runs of ifname, of frame_bytes if given."""
        return [r for r in self.nic_loops if r.ifname == ifname and
                frame_bytes in (None, r.frame_bytes)]

    def nic_stats_of(self, ifname):
        """{statistic: value} of ifname (the last value of each)."""
        return {s.name: s.value for s in self.nic_stats if s.ifname == ifname}

    def benches_of(self, device, block_bytes=None):
        """The Bench runs of device (/dev/NAME), of block_bytes if given."""
        return [b for b in self.benches if b.device == device and
                block_bytes in (None, b.block_bytes)]


def console_lines(log):
    """The lines of a console log: the serial console ends them with
    \\r\\n."""
    return [line.removesuffix("\r") for line in log.split("\n")]


def parse_console_log(log):
    """A GuestOutput of every IOGUARD- line in log (a serial console's
    text); other lines are left alone."""
    out = GuestOutput()
    for line in console_lines(log):
        if "IOGUARD-" not in line:
            continue
        # No kind's name and the space after it begin another's: the one
        # parser that takes a line is the first.
        if parse_pause(line):
            out.times_paused += 1
        elif parse_settle(line):
            out.times_settled += 1
        elif parse_done(line):
            out.times_done += 1
        elif (wait := parse_wait(line)) is not None:
            out.waits.append(wait)
        elif (types := parse_domain_types(line)) is not None:
            if out.domain_types is None:
                out.domain_types = types
        elif c := parse_checksum(line):
            out.checksums[c.name] = c.sha256
        elif disk := parse_missing(line):
            out.missing.append(disk)
        elif c := parse_recheck(line):
            out.rechecks[c.name] = c.sha256
        elif c := parse_share_read(line):
            out.share_read[c.name] = c.sha256
        elif c := parse_share_wrote(line):
            out.share_wrote[c.name] = c.sha256
        elif tag := parse_share_failed(line):
            out.share_failed.append(tag)
        elif fetch := parse_fetch(line):
            out.fetches.append(fetch)
        elif copybreak := parse_copybreak(line):
            out.copybreaks.append(copybreak)
        elif loop := parse_nicloop(line):
            out.nic_loops.append(loop)
        elif stat := parse_nicstat(line):
            out.nic_stats.append(stat)
        elif test := parse_dmatest(line):
            out.dma_tests.append(test)
        elif swiotlb := parse_swiotlb(line):
            out.swiotlb = out.swiotlb or swiotlb
        elif profile := parse_profile(line):
            out.profile = out.profile or profile
        elif bench := parse_bench(line):
            out.benches.append(bench)
        elif progress := parse_hostile_progress(line):
            out.hostile_progress.append(progress)
        elif op := parse_hostile_op(line):
            out.hostile_ops.append(op)
        elif done := parse_hostile_done(line):
            out.hostile_done = out.hostile_done or done
        elif (status := parse_hostile_exit(line)) is not None:
            if out.hostile_exit is None:
                out.hostile_exit = status
        elif dpdk := parse_dpdk(line):
            out.dpdk = out.dpdk or dpdk
    return out
