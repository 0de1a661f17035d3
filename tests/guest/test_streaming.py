"""Guest test of STREAMING mappings: an unmodified Linux guest gets plain
AMD behaviour by default (nothing is prefetched for any device, the guest
never turns the opt-in bit on), and a host policy added at run time through
QMP turns prefetching on for one device's DMA and no other's."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import guest_protocol as gp  # noqa: E402
import ioguard_vm as ivm  # noqa: E402

WORK = ivm.BUILD / "tests" / "guest"
NIC = "00:05.0"
NVME = "01:00.0"    # behind the root port at 00:02.0


def requesters(vm):
    return {r["requester"]: r
            for r in vm.cmd("query-ioguard-stats")[0]["requesters"]}


def test_no_prefetch_by_default_then_host_policy_for_one_device():
    WORK.mkdir(parents=True, exist_ok=True)
    image = WORK / "nvme-streaming.img"
    disk = ivm.nvme_behind_root_port(image, ivm.make_disk(image, 16, seed=41))
    vm = ivm.Vm(ivm.ioguard_args(), [disk], workdir=WORK / "streaming",
                append=gp.kernel_params(pause=20, net="10.0.2.15/24",
                                        nicloop="1500:500"),
                extra_args=ivm.nic("user,id=n0", "0x5"))
    with vm:
        assert vm.wait_for("IOGUARD-PAUSE", timeout=600), vm.log()[-2000:]
        streaming = vm.cmd("query-ioguard-streaming")
        assert streaming["rules"] == [] and not streaming["guest-opt-in"]
        assert streaming["prefetch-depth"] == 32
        booted = requesters(vm)
        assert booted[NVME]["translations"] > 0     # probe, partition table
        assert all(r["prefetch"]["issued"] == 0 for r in booted.values())

        vm.cmd("ioguard-streaming-add", requester=NVME)
        assert vm.wait_for("IOGUARD-DONE", timeout=900), vm.log()[-2000:]
        after = requesters(vm)
        assert not vm.cmd("query-ioguard-streaming")["guest-opt-in"]
        hmp = vm.cmd("human-monitor-command", **{"command-line":
                                                 "info ioguard-stats"})
    assert ivm.Vm.checksums(vm)["nvme0n1"] == disk.sha256

    # The NIC moved 500 frames each way with no rule: nothing prefetched.
    assert after[NIC]["translations"] > 1000
    assert after[NIC]["prefetch"]["issued"] == 0
    # The disk read with the rule: the walks moved ahead of the DMA.
    nvme, before = after[NVME], booted[NVME]
    prefetch = nvme["prefetch"]
    translations = nvme["translations"] - before["translations"]
    misses = nvme["iotlb-misses"] - before["iotlb-misses"]
    # 16 MiB in pages of 4 KiB and up (Linux maps contiguous memory with
    # larger IOMMU pages): most DMA found its translation prefetched, and
    # most of what was prefetched was used.
    assert translations > 1000
    assert misses < translations // 4, nvme
    assert prefetch["used"] > misses, nvme
    assert prefetch["used"] >= prefetch["issued"] // 2, nvme
    assert "prefetched" in hmp and "used" in hmp, hmp
