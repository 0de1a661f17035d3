"""Bad properties get a clear error that names them, and QEMU exits
cleanly instead of starting a machine it cannot honour."""

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import ioguard_vm as ivm  # noqa: E402


def start(props, *extra):
    return subprocess.run(
        [str(ivm.QEMU), "-L", str(ivm.firmware_dir()), "-M", "q35",
         "-nodefaults", "-display", "none", "-S",
         "-device", ",".join(["ioguard-iommu", *props]), *extra],
        capture_output=True, text=True, timeout=60, input="")


@pytest.mark.parametrize("props, message", [
    (["device-iotlb=on"], "device-iotlb=on is not supported"),
    (["xtsup=on", "ga=off"], "xtsup=on needs ga=on"),
    (["ga=maybe"], "'ga' expects 'on' or 'off'"),
    (["intremap=sometimes"], "intremap"),
    (["fault-records=100000"], "fault-records=100000 is more than 65536"),
    (["fault-records=-1"], "fault-records"),
    (["verifier=yes please"], "'verifier' expects 'on' or 'off'"),
    (["prefetch-depth=1000"], "prefetch-depth=1000 is more than 256"),
    (["streaming=00:05"], "streaming='00:05': '00:05' is not a requester ID"),
    (["streaming=00:05.0@0x2000-0x1000"],
     "streaming='00:05.0@0x2000-0x1000': IOVA range '0x2000-0x1000' ends "
     "before it starts"),
    (["streaming=00:05.0@nonsense"], "'nonsense' is not an IOVA range"),
    (["latency-model=sometimes"], "'latency-model' expects 'on' or 'off'"),
])
def test_unsupported_values_are_refused_by_name(props, message):
    r = start(props)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr


def test_more_than_255_cpus_need_xtsup():
    r = start([], "-smp", "1,maxcpus=288", "-accel", "tcg")
    assert r.returncode != 0
    assert "need xtsup=on" in r.stderr, r.stderr
