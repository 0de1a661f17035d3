"""Guest tests of fault injection (docs/ioguard-faults.rst): what an
unmodified Linux and ioguard-nic's driver do when ioguard's fault rules
break their DMA and their IOMMU commands.

- Translation faults on the NIC's DMA writes (received frames and
  descriptor write-backs), added over QMP while frames go round loopback:
  Linux logs the IO_PAGE_FAULTs of the NIC's requester ID, the driver logs
  the device's DMA error at the same address and recovers, frames are
  lost; once the rule is removed, traffic is lossless again.
- A COMPLETION_WAIT dropped at boot: Linux reports its completion-wait
  timeout, once, and carries on; a delayed one that arrives in time is no
  timeout."""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import guest_protocol as gp  # noqa: E402
import ioguard_vm as ivm  # noqa: E402

WORK = ivm.BUILD / "tests" / "guest"
NIC_BDF = "0000:00:05.0"


def fault_rules(vm):
    [info] = vm.cmd("query-ioguard-fault-rules", device="iommu")
    return info


def test_rx_dma_fault_then_recovery():
    vm = ivm.Vm(ivm.ioguard_args(), [], workdir=WORK / "faults-rx-dma",
                append=gp.kernel_params(nicloop=["1500:500", "wait",
                                                 "1500:1000", "wait",
                                                 "1500:1000"]),
                extra_args=ivm.nic("hubport,hubid=0,id=n0", "0x5"))
    with vm:
        assert vm.wait_for("IOGUARD-WAIT 1", timeout=600), vm.serial
        rule = vm.cmd("ioguard-fault-add", device="iommu",
                      rule="site=translate,requester=00:05.0,access=write,"
                           "when=every:200,action=fault")
        vm.flap_link()
        assert vm.wait_for("IOGUARD-WAIT 2", timeout=600), vm.serial
        during = fault_rules(vm)
        vm.cmd("ioguard-fault-remove", device="iommu", id=rule["id"])
        vm.flap_link()
        assert vm.wait_for("IOGUARD-DONE", timeout=600), vm.serial
        records = vm.cmd("query-ioguard-faults")[0]["faults"]
    log = vm.log()
    guest = gp.parse_console_log(log)
    before, broken, after = guest.nic_loops_of("eth0")

    # Before the rule and after it: every frame, intact.
    for run in (before, after):
        assert run.lost == 0 and run.corrupt == 0, run
        assert run.sha256 == run.sent_sha256, run
    # With it: faults fired, and the guest saw each kind of evidence.
    fired = during["rules"][0]["fired"]
    assert fired > 0
    assert broken.lost > 0, broken
    assert broken.corrupt == 0, broken          # refused, never damaged
    # Linux's IO_PAGE_FAULT and the device's DMA error name one address:
    # the write (a received frame's data or a descriptor's write-back, as
    # the 200th write happens to be) that the IOMMU refused.
    iommu_saw = set(re.findall(r"ioguard_nic 0000:00:05\.0: AMD-Vi: Event "
                               r"logged \[IO_PAGE_FAULT domain=0x[0-9a-f]+ "
                               r"address=(0x[0-9a-f]+)", log))
    device_saw = set(re.findall(r"eth0: DMA error: [rt]x-dma at (0x[0-9a-f]+)",
                                log))
    assert iommu_saw, "Linux logged no IO_PAGE_FAULT of the NIC"
    assert iommu_saw & device_saw, (iommu_saw, device_saw)
    assert guest.nic_stats_of("eth0")["device_dma_errors"] > 0
    injected = [r for r in records if r["reason"] == "injected"]
    assert injected and all(r["requester"] == "00:05.0" and
                            r["access"] == "write" for r in injected)
    assert len(injected) <= fired


def test_dropped_completion_wait_times_out(tmp_path):
    rules = tmp_path / "rules"
    rules.write_text("# the first COMPLETION_WAIT Linux issues is lost\n"
                     "site=completion-wait,when=once,action=drop\n"
                     "# the 5th arrives 1 ms late: in time\n"
                     "site=completion-wait,when=nth:5,action=delay:1ms\n")
    vm = ivm.Vm(ivm.ioguard_args(f"fault-rules={rules}"), [],
                workdir=WORK / "faults-completion-wait",
                append=gp.kernel_params(nicloop="1500:300"),
                extra_args=ivm.nic("hubport,hubid=0,id=n0", "0x5"))
    with vm:
        assert vm.wait_for("IOGUARD-DONE", timeout=600), vm.serial
        info = fault_rules(vm)
    log = vm.log()
    assert log.count("Completion-Wait loop timed out") == 1, \
        "Linux did not report the lost completion exactly once"
    [run] = gp.parse_console_log(log).nic_loops_of("eth0")
    assert run.lost == 0 and run.sha256 == run.sent_sha256, run
    actions = [f["action"] for f in info["fired"]]
    assert actions == ["drop", "delay"], info["fired"]
    assert info["fired"][1]["delay-ns"] == 1000000
