"""A real Slurm cluster of this one machine, for tests/guest/test_campaign.py
and scripts/bench-campaign: Debian 12's munged, slurmctld and slurmd, each
with its own key, socket, ports, state and logs in one folder, so that they
touch nothing of a Slurm the machine may have. The client commands find it
through SLURM_CONF (env()).

  with SingleNodeSlurm(folder) as cluster:
      subprocess.run(["sbatch", ...], env=cluster.env())

or, to try scripts/fault-campaign --slurm by hand, until Ctrl-C:

  python3 scripts/slurm_cluster.py FOLDER
"""
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

import ioguard_vm as ivm


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_mib():
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


class SingleNodeSlurm:
    """munged, slurmctld and slurmd on localhost: one node of all this
    machine's cores in one partition, jobs run as their submitter;
    max_array_size: the cluster's MaxArraySize (None: Slurm's default)."""

    def __init__(self, folder, partition="ioguard", cpus=None,
                 max_array_size=None):
        self.dir = Path(folder).resolve()
        self.partition = partition
        self.cpus = cpus or os.cpu_count()
        self.max_array_size = max_array_size
        self.conf = self.dir / "slurm.conf"
        self.munge_socket = self.dir / "munge" / "munge.socket"
        self.procs = []

    def env(self):
        return dict(os.environ, SLURM_CONF=str(self.conf))

    def write_config(self):
        host = socket.gethostname().split(".")[0]
        munge = self.munge_socket.parent
        for d in (self.dir / "state", self.dir / "spool", munge):
            d.mkdir(parents=True, exist_ok=True)
        munge.chmod(0o700)
        key = munge / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o600)
        d = self.dir
        self.conf.write_text(f"""\
# A single-node Slurm (scripts/slurm_cluster.py)
ClusterName=ioguard
SlurmctldHost={host}
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
# No cgroups here: processes are tracked by their parents, not bound.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
{f"MaxArraySize={self.max_array_size}" if self.max_array_size else ""}
NodeName={host} CPUs={self.cpus} RealMemory={memory_mib() - 1024} State=UNKNOWN
PartitionName={self.partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")

    def start(self):
        """Starts the daemons; returns once the node takes jobs."""
        self.write_config()
        m = self.munge_socket.parent
        # --force: munged refuses root unless told (it is its own user on
        # a real cluster).
        self.daemon(["munged", "--foreground", "--force",
                     f"--socket={self.munge_socket}",
                     f"--key-file={m}/munge.key", f"--log-file={m}/munged.log",
                     f"--pid-file={m}/munged.pid", f"--seed-file={m}/seed"])
        self.wait(lambda: self.munge_socket.exists(), "munged's socket")
        self.daemon(["slurmctld", "-D", "-i"])
        self.daemon(["slurmd", "-D"])
        self.wait(self.idle, "the node to be idle (see "
                  f"{self.dir}/slurmctld.log and slurmd.log)")
        return self

    def daemon(self, cmd):
        log = open(self.dir / f"{cmd[0]}.stderr", "w")
        # Killed with the thread that started them, should that go without
        # stop() (a test run killed): no daemon is left behind.
        self.procs.append(subprocess.Popen(
            cmd, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=ivm.kill_me_with_parent))

    def idle(self):
        run = subprocess.run(["sinfo", "--noheader", "--format=%t"],
                             env=self.env(), capture_output=True, text=True)
        return run.returncode == 0 and run.stdout.strip() == "idle"

    def wait(self, ready, what, timeout=60):
        deadline = time.time() + timeout
        while not ready():
            dead = [p.args[0] for p in self.procs if p.poll() is not None]
            if dead or time.time() > deadline:
                self.stop()
                raise RuntimeError(f"single-node Slurm: waited for {what}"
                                   + (f"; {', '.join(dead)} exited" if dead
                                      else ""))
            time.sleep(0.2)

    def stop(self):
        """Cancels every job, then stops the daemons (SIGKILL if they do not
        go within 10 s)."""
        if self.procs and all(p.poll() is None for p in self.procs):
            subprocess.run(["scancel", "--full", f"--user={os.getuid()}"],
                           env=self.env(), capture_output=True)
            deadline = time.time() + 30
            while time.time() < deadline and subprocess.run(
                    ["squeue", "--noheader"], env=self.env(),
                    capture_output=True, text=True).stdout.strip():
                time.sleep(0.5)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


if __name__ == "__main__":
    import sys
    if len(sys.argv) != 2:
        sys.exit("usage: python3 scripts/slurm_cluster.py FOLDER")
    # Ctrl-C, or a kill, stops the daemons (a shell starting this in the
    # background has it ignore SIGINT).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with SingleNodeSlurm(sys.argv[1]) as c:
        print(f"a single-node Slurm is up until Ctrl-C; in another shell:\n"
              f"  export SLURM_CONF={c.conf}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
