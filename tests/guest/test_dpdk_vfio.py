"""Guest test: DPDK inside the guest, behind ioguard-iommu. Two e1000s on
one QEMU hub are bound to vfio-pci in the guest, and Debian 12's testpmd
(scripts/build-guest appends its initramfs, tests/guest/dpdk-testpmd.sh
runs it) forwards the frames the hub carries between them for ten seconds.
Linux's VFIO gives each NIC an unmanaged domain in ioguard's tables, so
every descriptor and buffer DMA of the NICs is translated through the
mappings DPDK asked for; none may fault."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import guest_protocol as gp  # noqa: E402
import ioguard_vm as ivm  # noqa: E402

WORK = ivm.BUILD / "tests" / "guest" / "dpdk-vfio"
NICS = ("00:06.0", "00:07.0")


def guest_with_dpdk():
    """The default guest with the vfio modules' and DPDK's initramfs
    appended to its own (Linux unpacks each archive of the initrd in
    turn)."""
    guest = Path(ivm.GUEST).resolve()
    return ivm.guest_with_extra(WORK, guest / "vfio.cpio.gz",
                                guest / "dpdk.cpio.gz")


def test_testpmd_forwards_over_vfio_pci():
    nics = []
    for i, nic in enumerate(NICS):
        nics += ["-netdev", f"hubport,id=hub{i},hubid=0",
                 "-device", f"e1000,netdev=hub{i},addr={nic[3:]},romfile="]
    # -cpu max: Debian's DPDK needs SSE4.2, which TCG's default CPU lacks.
    vm = ivm.Vm(ivm.ioguard_args(), [],
                append=gp.kernel_params(run="dpdk-testpmd.sh", dpdktime=10),
                guest=guest_with_dpdk(), workdir=WORK / "vm",
                extra_args=["-cpu", "max", *nics])
    with vm:
        finished = vm.wait_for("IOGUARD-DONE", timeout=900)
        stats = vm.cmd("query-ioguard-stats")[0]
    assert finished, f"guest did not finish, see {vm.serial}"
    log = vm.log()
    assert "IOGUARD-DPDK-ERROR" not in log
    run = gp.parse_console_log(log).dpdk
    assert run is not None, f"no IOGUARD-DPDK line, see {vm.serial}"
    assert run.ports == 2 and run.exit == 0, run
    assert run.rx > 0 and run.tx > 0, run
    assert stats["faults"] == 0 and stats["events-logged"] == 0
    requesters = {r["requester"]: r for r in stats["requesters"]}
    for nic in NICS:
        assert requesters[nic]["translations"] > run.rx // 2, requesters[nic]
