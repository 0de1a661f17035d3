"""Guest tests: shared virtual addressing (SVA) on ioguard-iommu, which no
other emulated AMD IOMMU can run (issue 23).

Debian's 6.12 on `-device ioguard-iommu,guest-translation=on,device-iotlb=on`
(GT, PPRSup, EPHSup, IotlbSup: Linux allocates its PPR log and IOPF queue)
with `-device ioguard-nic,ats=on,pri=on` on pcie.0 (PASID, ATS and PRI
capabilities). The NIC's driver enables IOPF and SVA; a user program
(tests/guest/svatool.cc) has the NIC's test engine read and write its own
pointers: the driver binds the process's address space (a PASID whose GCR3
entry holds the process's page tables), the engine's ATS requests carry the
PASID, a page that is not present becomes a page request in the PPR log,
Linux's I/O page fault handler faults it in and answers with
COMPLETE_PPR_REQUEST, and the engine retries.

Debian's 6.12 refuses iommu_sva_bind_device() on x86 as a whole (the 2025
stable fix "iommu: disable SVA when CONFIG_X86 is set"), so the NIC's
driver binds by hand what that function would (bind=driver in its result
lines): a global PASID, the AMD driver's own SVA domain for the process's
mm (its GCR3 entry and mmu notifier) attached at the PASID, and an I/O
page fault handler that faults pages in as the core's does. The IOMMU sees
exactly what Linux's AMD driver does for SVA."""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import guest_protocol as gp  # noqa: E402
import ioguard_vm as ivm  # noqa: E402

WORK = ivm.BUILD / "tests" / "guest"

NIC = ["-netdev", "hubport,hubid=0,id=n0",
       "-device", "ioguard-nic,id=nic0,netdev=n0,addr=0x5,ats=on,pri=on"]


def nic_counter(vm, name):
    return vm.cmd("qom-get", path="/machine/peripheral/nic0", property=name)


def test_sva_with_page_requests():
    vm = ivm.Vm(ivm.ioguard_args("guest-translation=on", "device-iotlb=on"),
                [], append=gp.kernel_params(sva=True), workdir=WORK / "sva",
                extra_args=NIC)
    with vm:
        finished = vm.wait_for("IOGUARD-DONE", timeout=900)
        stats = vm.stats()
        requests = nic_counter(vm, "page-requests")
        responses = nic_counter(vm, "page-responses")
    assert finished, f"guest did not finish, see {vm.serial}"
    log = vm.log()
    assert "shared virtual addressing: PASID on, PRI on" in log, \
        "the driver did not get SVA"
    results = dict(re.findall(r"IOGUARD-SVA (\S+) (ok|FAILED)", log))
    assert results == {"present": "ok", "faulted-read": "ok",
                       "faulted-write": "ok", "refused": "ok"}, \
        [line for line in log.splitlines() if "IOGUARD-SVA" in line]
    # A page that is not present is no error (no event): the device asks
    # for it with a page request.
    for bad in ("Event logged", "Completion-Wait loop timed out",
                "PPR log overflow", "Unknown PPR request", "Invalid PASID"):
        assert bad not in log, bad
    assert "bind=" in log
    # Four pages faulted in by reads, four by writes, and the refused one
    # (whose single request software answers with a failure).
    assert requests >= 9, requests
    assert responses == requests, (requests, responses)
    nic = gp_requester(stats, "00:05.0")
    assert nic["page-requests"] == requests, nic
    assert nic["page-responses"] == responses, nic
    commands = {c["name"]: c["count"] for c in stats["commands"]}
    assert commands.get("complete-ppr-request", 0) == responses, commands


def gp_requester(stats, bdf):
    for r in stats["requesters"]:
        if r["requester"] == bdf:
            return r
    raise AssertionError(f"no requester {bdf} in {stats['requesters']}")


def test_page_response_turned_into_a_failure():
    """A fault rule turns software's first answer into a Response Failure:
    the engine stops with te-page at the first page it asked for, PRI's RF
    bit stops its page requests, and what follows fails as plain refused
    DMA (te-dma) until PRI is reset. Linux logs no IOMMU error."""
    work = WORK / "sva-fault"
    work.mkdir(parents=True, exist_ok=True)
    rules = work / "page-response.rules"
    rules.write_text("site=page-response,requester=00:05.0,when=once,"
                     "action=fault\n")
    vm = ivm.Vm(ivm.ioguard_args("guest-translation=on", "device-iotlb=on",
                                 f"fault-rules={rules}"),
                [], append=gp.kernel_params(sva=True), workdir=work,
                extra_args=NIC)
    with vm:
        finished = vm.wait_for("IOGUARD-DONE", timeout=900)
        [rules_info] = vm.cmd("query-ioguard-fault-rules", device="iommu")
        requests = nic_counter(vm, "page-requests")
    assert finished, f"guest did not finish, see {vm.serial}"
    log = vm.log()
    lines = {m.group(1): m.group(0) for m in
             re.finditer(r"IOGUARD-SVA (\S+) .*", log)}
    assert " ok " in lines["present"], lines
    assert "code=10 addr=0x20000000" in lines["faulted-read"], lines
    assert "code=9" in lines["faulted-write"], lines
    assert "code=9" in lines["refused"], lines
    assert requests == 1, requests
    assert "Event logged" not in log
    [rule] = rules_info["rules"]
    assert rule["fired"] == 1, rules_info
