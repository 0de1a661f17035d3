"""Run a q35 guest with ioguard and talk to it: serial log, QMP, disks.

Used by scripts/demo and tests/guest.
"""

import ctypes
import functools
import hashlib
import http.server
import json
import os
import random
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import guest_protocol as gp

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("IOGUARD_BUILD", ROOT / "build"))
QEMU = BUILD / "qemu" / "qemu-system-x86_64"
GUEST = BUILD / "guest" / "default"          # Debian's 6.12
GUEST_6_1 = BUILD / "guest" / "6.1"          # Debian's 6.1 (bookworm)
FIRMWARE = BUILD / "firmware"


class Qmp:
    """A minimal synchronous QMP client (events are read and set aside)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(60)
        self.sock.connect(str(path))
        self.stream = self.sock.makefile("rw")
        self.events = []
        json.loads(self.stream.readline())          # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, command, **args):
        self.stream.write(json.dumps({"execute": command,
                                      "arguments": args}) + "\n")
        self.stream.flush()
        while True:
            line = self.stream.readline()
            if not line:
                raise EOFError(f"QMP closed during {command}")
            reply = json.loads(line)
            if "event" in reply:
                self.events.append(reply)
            elif "error" in reply:
                raise RuntimeError(f"{command}: {reply['error']['desc']}")
            else:
                return reply["return"]

    def close(self):
        self.sock.close()


def firmware_dir():
    """A -L folder with the few blobs q35 needs, from Debian's packages."""
    FIRMWARE.mkdir(parents=True, exist_ok=True)
    for src in ("/usr/share/seabios/bios-256k.bin",
                "/usr/share/seabios/vgabios-stdvga.bin",
                "/usr/share/qemu/linuxboot_dma.bin",
                "/usr/share/qemu/kvmvapic.bin"):
        dst = FIRMWARE / os.path.basename(src)
        if not dst.exists():
            dst.symlink_to(src)
    return FIRMWARE


def make_disk(path, size_mib, seed):
    """A raw disk image of seeded random bytes; returns its sha256."""
    path = Path(path)
    rng = random.Random(seed)
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(size_mib):
            chunk = rng.randbytes(1 << 20)
            digest.update(chunk)
            f.write(chunk)
    return digest.hexdigest()


class FileServer:
    """An HTTP server on the host's 127.0.0.1, which a guest on -netdev user
    reaches as 10.0.2.2, serving one file of seeded random bytes."""

    def __init__(self, root, size, seed):
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        data = random.Random(seed).randbytes(size)
        (root / "blob").write_bytes(data)
        self.size = size
        self.sha256 = hashlib.sha256(data).hexdigest()
        handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                    directory=str(root))
        handler.log_message = lambda *a: None
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      handler)
        self.url = f"http://10.0.2.2:{self.server.server_address[1]}/blob"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def nic(netdev="user,id=n0", addr="0x5", props=()):
    """-netdev and -device ioguard-nic; the guest's driver names it eth0."""
    return ["-netdev", netdev, "-device",
            ",".join(["ioguard-nic", "netdev=n0", f"addr={addr}", *props])]


class Disk:
    """A disk the guest reads: name as the guest sees it, and QEMU args."""

    def __init__(self, guest_name, image, sha256, args):
        self.guest_name = guest_name
        self.image = image
        self.sha256 = sha256
        self.args = args


def nvme_behind_root_port(image, sha256, port_addr="0x2", image_format="raw"):
    return Disk("nvme0n1", image, sha256, [
        "-device", f"pcie-root-port,id=rp-nvme,bus=pcie.0,chassis=1,addr={port_addr}",
        "-drive", f"file={image},if=none,id=nvme0,format={image_format}",
        "-device", "nvme,drive=nvme0,serial=ioguard-nvme,bus=rp-nvme",
    ])


def ahci(image, sha256):
    # q35's own ICH9 AHCI controller at 00:1f.2
    return Disk("sda", image, sha256, [
        "-drive", f"file={image},if=none,id=sata0,format=raw",
        "-device", "ide-hd,drive=sata0,bus=ide.0",
    ])


def virtio_blk_behind_pci_bridge(image, sha256, bridge_addr="0x4"):
    """A conventional PCI device behind a PCIe-to-PCI bridge: its DMA reaches
    the IOMMU with the bridge's secondary-bus alias, not its own ID."""
    return Disk("vda", image, sha256, [
        "-device", f"pcie-pci-bridge,id=br-vblk,bus=pcie.0,addr={bridge_addr}",
        "-drive", f"file={image},if=none,id=vblk0,format=raw",
        "-device", "virtio-blk-pci,drive=vblk0,bus=br-vblk,addr=0x1,"
                   "iommu_platform=on,disable-legacy=on",
    ])


def virtio_blk(image, sha256, port_addr="0x3", ats=False):
    """ats: the device offers PCIe ATS (a translation cache of its own),
    which the guest enables when the IOMMU says IotlbSup."""
    return Disk("vda", image, sha256, [
        "-device", f"pcie-root-port,id=rp-vblk,bus=pcie.0,chassis=2,addr={port_addr}",
        "-drive", f"file={image},if=none,id=vblk0,format=raw",
        "-device", "virtio-blk-pci,drive=vblk0,bus=rp-vblk,"
                   "iommu_platform=on,disable-legacy=on" + (",ats=on" if ats else ""),
    ])


def kill_me_with_parent():
    """In a child before exec: SIGKILL when the parent thread goes
    (prctl PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


class Vm:
    """One QEMU process running the project's guest kernel and initramfs."""

    def __init__(self, iommu_args, disks, append="", memory="1G", smp=2,
                 workdir=None, extra_args=(), guest=GUEST, qemu=QEMU):
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="ioguard-vm-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.serial = self.workdir / "serial.log"
        self.qmp_path = self.workdir / "qmp.sock"
        # no_timer_check: Linux's early check that the timer interrupt
        # ticks within a busy-wait panics ("timer doesn't work through
        # Interrupt-remapped IO-APIC") when a TCG vCPU is starved by a
        # loaded host; it is what Linux skips on hypervisors it knows.
        init = gp.kernel_params(disks=[d.guest_name for d in disks], hold=60)
        cmdline = (f"console=ttyS0 panic=-1 no_timer_check {init} "
                   f"{append}".strip())
        self.args = [
            str(qemu), "-L", str(firmware_dir()),
            "-M", "q35", "-accel", "tcg", "-m", memory, "-smp", str(smp),
            "-nodefaults", "-vga", "none", "-display", "none",
            "-no-reboot", "-no-shutdown",
            "-kernel", str(Path(guest) / "vmlinuz"),
            "-initrd", str(Path(guest) / "initramfs.cpio.gz"),
            "-append", cmdline,
            "-serial", f"file:{self.serial}",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
            *iommu_args,
        ]
        for d in disks:
            self.args += d.args
        self.args += list(extra_args)
        self.disks = disks
        self.proc = None
        self.qmp = None
        self.stderr = self.workdir / "qemu.stderr"

    # True: QEMU is killed when the thread that started it goes (the
    # campaign runner: a killed runner leaves no VM behind to write into a
    # scenario's folder while a resumed run redoes it).
    die_with_parent = False

    def start(self):
        for stale in (self.qmp_path, self.serial):
            stale.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.DEVNULL,
            stderr=open(self.stderr, "w"),
            preexec_fn=kill_me_with_parent if self.die_with_parent else None)
        deadline = time.time() + 30
        while not self.qmp_path.exists():
            if self.proc.poll() is not None:
                raise RuntimeError("QEMU exited: " + self.stderr.read_text())
            if time.time() > deadline:
                raise RuntimeError("QEMU did not open its QMP socket")
            time.sleep(0.05)
        self.qmp = self.open_qmp()
        return self

    def open_qmp(self):
        """The QMP client (scripts/fault_campaign.py uses QEMU's own)."""
        return Qmp(self.qmp_path)

    def close_qmp(self):
        self.qmp.close()

    def log(self):
        try:
            return self.serial.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for(self, marker, timeout=600):
        """Waits until marker appears in the guest's serial output."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if marker in self.log():
                return True
            if self.proc.poll() is not None:
                return marker in self.log()
            time.sleep(0.2)
        return False

    def cmd(self, command, **args):
        return self.qmp.cmd(command, **args)

    def stats(self):
        """The IOMMU's query-ioguard-stats (the machine has one)."""
        [stats] = self.cmd("query-ioguard-stats")
        return stats

    def flap_link(self, netdev="n0", timeout=120):
        """The cue a guest waiting in init's nicloop "wait" goes on at: the
        link goes up again only once the driver has seen it down, so that
        the guest sees both edges."""
        down = self.log().count("eth0: link down")
        self.cmd("set_link", name=netdev, up=False)
        deadline = time.time() + timeout
        while self.log().count("eth0: link down") == down:
            if time.time() > deadline:
                raise RuntimeError("the guest never saw the link go down")
            time.sleep(0.1)
        self.cmd("set_link", name=netdev, up=True)

    def save_to(self, path):
        """Stops the machine where it is, as savevm does, and saves its whole
        state to path (QMP migrate to a file); start another with
        extra_args -incoming file:PATH, wait_migration() and cont."""
        self.cmd("stop")
        self.cmd("migrate", uri=f"file:{path}")
        self.wait_migration()

    def wait_migration(self, timeout=300):
        """Until the outgoing or incoming migration has completed."""
        deadline = time.time() + timeout
        while True:
            status = self.cmd("query-migrate").get("status")
            if status == "completed":
                return
            if status == "failed" or time.time() > deadline:
                raise RuntimeError(f"migration {status}: "
                                   f"{self.cmd('query-migrate')}")
            time.sleep(0.1)

    def checksums(self):
        """{disk: sha256} of what the guest read."""
        return gp.parse_console_log(self.log()).checksums

    def stop(self):
        if self.qmp:
            try:
                self.qmp.cmd("quit")
            except Exception:
                pass
            self.close_qmp()
        if self.proc:
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def guest_with_extra(work, *archives, guest=GUEST):
    """A guest folder in work: guest's kernel, and its initramfs with the
    archives appended (Linux unpacks each archive of the initrd in turn;
    init runs /extra/NAME of one for ioguard.run=NAME)."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    guest = Path(guest).resolve()
    (work / "vmlinuz").unlink(missing_ok=True)
    (work / "vmlinuz").symlink_to(guest / "vmlinuz")
    with open(work / "initramfs.cpio.gz", "wb") as out:
        for archive in (guest / "initramfs.cpio.gz", *archives):
            out.write(Path(archive).read_bytes())
    return work


def ioguard_args(*props):
    """-device ioguard-iommu with id=iommu, so QMP can find it."""
    return ["-device", ",".join(["ioguard-iommu", "id=iommu", *props])]
