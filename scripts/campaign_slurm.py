"""A fault-injection campaign run as a Slurm job array (scripts/fault-campaign
--slurm): one array task per scenario (or per few, one after the other:
--scenarios-per-task, or as the cluster's MaxArraySize needs), each running
the scenario exactly as the local pool does (fault_campaign.Campaign.run_one)
on whichever node Slurm picks.

The nodes must see the campaign's folder (--out) at the same path: what a
task needs there is staged once (stage/: the QEMU binary, the guest's
kernel and initramfs, the firmware blobs, QEMU's QMP library and these
scripts; the disk images and saved snapshots sit beside the scenarios'
folders), and each task writes its scenario's result.json there. A job
checks that before anything is submitted. The nodes run the same Debian 12
as this machine with scripts/setup-host's packages (QEMU's shared
libraries); nothing is built on them.

Snapshots are saved once, by a job the array depends on. While the array
runs, the progress bar counts what squeue says is pending and running and
what the result files say is done or failed. A runner that is killed
loses nothing: the jobs run on, and the same command run again follows
them, then submits only what is left without a result.
"""
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fault_campaign as fc  # noqa: E402
import ioguard_vm as ivm  # noqa: E402

SCRIPTS = ("fault_campaign.py", "campaign_slurm.py", "ioguard_vm.py",
           "guest_protocol.py")
# squeue's states of a job that has not ended yet
WAITING = {"PENDING", "REQUEUED", "SUSPENDED", "REQUEUE_HOLD",
           "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT"}
POLL_SECONDS = 2


class Options:
    """--slurm's settings: the partition (None: the cluster's default), how
    many tasks at once at most (None: as many as Slurm gives), how many
    scenarios each task runs one after the other (None: one, or as many as
    the cluster's largest array needs), and sbatch options passed through
    as they are."""

    def __init__(self, partition=None, max_parallel=None, per_task=None,
                 sbatch_args=()):
        self.partition, self.max_parallel = partition, max_parallel
        self.per_task = per_task
        self.sbatch_args = list(sbatch_args)

    def sbatch(self, *args):
        """The sbatch command line: ours, then the user's (which win)."""
        cmd = ["sbatch", "--parsable"]
        if self.partition:
            cmd.append(f"--partition={self.partition}")
        return cmd + list(args) + self.sbatch_args


def command(cmd, what):
    """cmd's standard output; a CampaignError with its own message if it
    fails."""
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        raise fc.CampaignError(f"{what}: {run.stderr.strip() or run.stdout}")
    return run.stdout


def check_slurm(options):
    """Refuses a machine without Slurm's commands, and a partition the
    cluster does not have, naming it and those it has."""
    for tool in ("sbatch", "squeue", "sinfo"):
        if shutil.which(tool) is None:
            raise fc.CampaignError(
                f"--slurm: {tool} not found: Slurm's client commands "
                "(Debian: slurm-client) must be on this machine, configured "
                "for the cluster")
    # sinfo marks the default partition with a "*"
    names = command(["sinfo", "--noheader", "--format=%P"],
                    "sinfo").split()
    if options.partition and options.partition + "*" not in names and \
            options.partition not in names:
        listed = [n[:-1] + " (the default)" if n.endswith("*") else n
                  for n in names]
        raise fc.CampaignError(
            f"--partition {options.partition}: no such partition in this "
            f"cluster (partitions: {', '.join(listed) or 'none'})")


def copy_if_changed(src, dst):
    """Copies src to dst unless dst is already the same file (size and
    modification time; copy2 keeps the latter)."""
    src, dst = Path(src).resolve(), Path(dst)
    if dst.exists():
        a, b = src.stat(), dst.stat()
        if (a.st_size, a.st_mtime_ns) == (b.st_size, b.st_mtime_ns):
            return
    dst.parent.mkdir(parents=True, exist_ok=True)
    partial = dst.with_name(dst.name + ".partial")
    shutil.copy2(src, partial)
    partial.rename(dst)


def stage(c):
    """Copies what a task needs into c.outdir/stage, laid out as build/ is
    (so that IOGUARD_BUILD=stage finds it), once: files already there and
    unchanged are kept. Returns the stage folder."""
    st = c.outdir / "stage"
    copy_if_changed(ivm.QEMU, st / "qemu" / "qemu-system-x86_64")
    for name in ("vmlinuz", "initramfs.cpio.gz"):
        copy_if_changed(ivm.GUEST / name, st / "guest" / "default" / name)
    for blob in ivm.firmware_dir().iterdir():
        copy_if_changed(blob, st / "firmware" / blob.name)
    qmp_lib = ivm.BUILD / "qemu-src" / "python" / "qemu"
    for f in qmp_lib.rglob("*.py"):
        copy_if_changed(f, st / "qemu-src" / "python" / "qemu" /
                        f.relative_to(qmp_lib))
    here = Path(__file__).resolve().parent
    for name in SCRIPTS:
        copy_if_changed(here / name, st / "scripts" / name)
    (st / "campaign.json").write_text(c.path.read_text())
    return st


def batch_script(c, st, name, args):
    """A batch script in the campaign's slurm/ folder that runs this file
    from the stage with args, then sbatch's arguments after the script."""
    script = c.outdir / "slurm" / name
    script.write_text(
        "#!/bin/sh\n"
        "# Written by scripts/fault-campaign --slurm (campaign_slurm.py).\n"
        f"export IOGUARD_BUILD={shlex.quote(str(st))}\n"
        f"exec {shlex.quote(sys.executable)} "
        f"{shlex.quote(str(st / 'scripts' / 'campaign_slurm.py'))} "
        + " ".join(shlex.quote(str(a)) for a in args) + ' "$@"\n')
    script.chmod(0o755)
    return script


def check_shared(c, st, options):
    """Runs one job that reads a token written here and the staged QEMU
    binary at the same paths: the campaign folder must be shared with the
    nodes. Returns the seconds it took."""
    start = time.time()
    token_file = c.outdir / "slurm" / "shared-check"
    token = secrets.token_hex(8)
    token_file.write_text(token)
    check = (f"test \"$(cat {shlex.quote(str(token_file))} 2>/dev/null)\" "
             f"= {token} && test -x "
             f"{shlex.quote(str(st / 'qemu' / 'qemu-system-x86_64'))}")
    run = subprocess.run(
        options.sbatch("--wait", "--job-name=ioguard-shared-check",
                       "--output=/dev/null", "--time=5", f"--wrap={check}"),
        capture_output=True, text=True)
    if run.returncode != 0 and not run.stdout.strip():
        raise fc.CampaignError(f"sbatch: {run.stderr.strip()}")
    if run.returncode != 0:
        # The job ran and did not find what this machine wrote.
        raise fc.CampaignError(
            f"--out {c.outdir}: a Slurm job could not read {token_file} as "
            "this machine wrote it: the campaign folder must be on storage "
            "the nodes share, at the same path")
    return time.time() - start


def memory_mib(text):
    """A campaign's memory size ("1G", "512M", "2048": checked by
    fault_campaign.load) in MiB."""
    text = str(text)
    if text[-1] in "MG":
        return int(text[:-1]) * (1024 if text[-1] == "G" else 1)
    return int(text)


class Submissions:
    """The Slurm jobs submitted into a campaign folder (slurm/jobs.json):
    for each submission, its snapshot job (or none), its array and the
    scenarios of the array's tasks, so that a runner started again
    follows those of an earlier one."""

    def __init__(self, outdir):
        self.file = outdir / "slurm" / "jobs.json"

    def all(self):
        try:
            return json.loads(self.file.read_text())
        except (OSError, json.JSONDecodeError):
            return []

    def add(self, submission):
        self.file.write_text(json.dumps(self.all() + [submission]))


def tasks_of(submission):
    """{Slurm task id: the scenarios' names it runs} of a submission's
    array."""
    return {f"{submission['array']}_{i}": names
            for i, names in enumerate(submission["tasks"])}


def max_array_size():
    """The cluster's MaxArraySize (an array's indices are below it); Slurm's
    default if scontrol does not say."""
    try:
        out = command(["scontrol", "show", "config"], "scontrol")
    except fc.CampaignError:
        return 1001
    m = re.search(r"^MaxArraySize\s*=\s*(\d+)", out, re.M)
    return int(m.group(1)) if m else 1001


def tasks(names, options):
    """names in the array's tasks: options.per_task each, or more if the
    cluster's MaxArraySize allows fewer tasks."""
    needed = -(-len(names) // max_array_size())
    k = max(options.per_task or 1, needed)
    return [names[i:i + k] for i in range(0, len(names), k)]


def queue():
    """{job or JOB_TASK: state} of the user's jobs that have not ended
    (squeue lists no job that has, so asking for one is no error)."""
    out = command(["squeue", "--noheader", "--array", "--user",
                   str(os.getuid()), "--format=%i %T"], "squeue")
    return dict(line.split() for line in out.splitlines())


def follow(c, submission, progress):
    """Waits until none of the submission's jobs is queued or running; the
    progress bar counts its tasks: pending and running as squeue says,
    done or failed as their results say (or ended without one)."""
    by_name = {s["name"]: s for s in c.scenarios}
    scenarios = {name: task for task, names in tasks_of(submission).items()
                 for name in names}
    jobs = {submission["array"], submission["snapshots"]} - {None}
    # Done before: the scenarios outside this submission with a result.
    earlier = sum(s["name"] not in scenarios and c.results.earlier(s)
                  is not None for s in c.scenarios)
    results = {}        # a scenario's result, once its task wrote it
    shown = None
    while True:
        try:
            states = {t: s for t, s in queue().items()
                      if t.split("_")[0] in jobs}
        except fc.CampaignError:
            time.sleep(POLL_SECONDS)     # the controller busy: ask again
            continue
        for name in scenarios.keys() - results.keys():
            row = c.results.current(by_name[name])
            if row is not None:
                results[name] = row
        done = sum(r["outcome"] != "error" for r in results.values())
        failed = len(results) - done + sum(
            name not in results and task not in states
            for name, task in scenarios.items())
        pending = sum(s in WAITING for s in states.values())
        progress.done = earlier + done
        counts = (f"jobs pending {pending}, running "
                  f"{len(states) - pending}; scenarios done {done}, "
                  f"failed {failed}")
        if counts != shown or progress.tty:
            progress.show(counts)
            shown = counts
        if not states:
            return
        time.sleep(POLL_SECONDS)


def submit(c, st, options, number):
    """Submits the snapshot job (if a snapshot is to be saved) and the
    array of c.todo; returns the submission."""
    slurm = c.outdir / "slurm"
    groups = tasks([s["name"] for s in c.todo], options)
    array_file = slurm / f"array-{number}.json"
    array_file.write_text(json.dumps(groups))
    needed = [n for n in c.snapshots_needed()
              if not fc.snapshot_saved(c.outdir, n, c.snapshots[n])]
    memory = max(memory_mib(c.machine_of(s).get("memory", "1G"))
                 for s in c.todo)
    # QEMU itself needs some room beside the guest's memory.
    common = [f"--mem={memory + 1024}M", "--cpus-per-task=1"]
    submission = {"snapshots": None, "tasks": groups}
    after = []
    if needed:
        script = batch_script(c, st, "snapshots.sh", ["snapshots", c.outdir,
                                                      *needed])
        submission["snapshots"] = command(options.sbatch(
            *common, "--job-name=ioguard-snapshots",
            f"--output={slurm}/snapshots-%j.out", str(script)),
            "sbatch").strip().split(";")[0]
        after = [f"--dependency=afterok:{submission['snapshots']}",
                 "--kill-on-invalid-dep=yes"]
    array = f"0-{len(groups) - 1}"
    if options.max_parallel:
        array += f"%{options.max_parallel}"
    script = batch_script(c, st, "task.sh", ["task", c.outdir])
    submission["array"] = command(options.sbatch(
        *common, *after, f"--array={array}",
        "--job-name=ioguard-campaign", f"--output={slurm}/%A_%a.out",
        str(script), array_file), "sbatch").strip().split(";")[0]
    return submission


def collect(c, submission):
    """The rows of a submission's scenarios: each its task's result, or an
    error (kept as its result, so that a run again redoes it) if the task
    ended without one."""
    slurm = c.outdir / "slurm"
    by_name = {s["name"]: s for s in c.scenarios}
    rows = {}
    for task_id, name in ((t, n) for t, names in tasks_of(submission).items()
                          for n in names):
        s = by_name[name]
        row = c.results.current(s)
        if row is None:
            # Cancelled, out of time, its node gone, or its snapshot never
            # saved.
            why = f"see {slurm}/{task_id}.out"
            snap = s.get("snapshot")
            if snap and not fc.snapshot_path(c.outdir, snap).exists():
                why = (f"snapshot {snap} was not saved: see "
                       f"{slurm}/snapshots-{submission['snapshots']}.out")
            row = c.results.finished(s, {
                "scenario": name, "outcome": "error",
                "expected": s.get("expect", ""),
                "attempts": c.results.attempts(s),
                "detail": f"its Slurm task ended without a result ({why})"})
        rows[name] = row
    return rows


def run(path, outdir, options):
    """Runs the campaign in path into outdir through Slurm, or what of it
    has no result there yet; writes results.csv and results.html into
    outdir and returns the rows."""
    outdir = Path(outdir).resolve()
    check_slurm(options)
    c = fc.Campaign(path, outdir)
    (outdir / "slurm").mkdir(exist_ok=True)
    progress = fc.Progress(len(c.scenarios),
                           done=len(c.scenarios) - len(c.todo))
    submissions = Submissions(outdir)
    queued = {t.split("_")[0] for t in queue()}
    for earlier in submissions.all():
        if {earlier["array"], earlier["snapshots"]} & queued:
            print(f"following Slurm job {earlier['array']} of an earlier "
                  f"run into {outdir}", file=sys.stderr)
            follow(c, earlier, progress)
            c = fc.Campaign(path, outdir)      # what it left to run
    if not c.todo:
        return c.write_results({})
    start = time.time()
    st = stage(c)
    staged = time.time() - start
    checked = check_shared(c, st, options)
    start = time.time()
    for s in c.todo:
        c.results.forget(s)      # an error of an earlier run: not "done"
    submission = submit(c, st, options, len(submissions.all()))
    submissions.add(submission)
    submitted = time.time() - start
    jobs = [j for j in (submission["snapshots"], submission["array"]) if j]
    n, k = len(c.todo), len(submission["tasks"])
    print(f"submitted Slurm job(s) {', '.join(jobs)} ({n} "
          f"scenario{'s' if n > 1 else ''} in {k} task{'s' if k > 1 else ''}"
          f"); their output is in {outdir / 'slurm'}", file=sys.stderr)
    follow(c, submission, progress)
    start = time.time()
    rows = c.write_results(collect(c, submission))
    print(f"runner's own time: staging {staged:.1f} s, shared-folder check "
          f"{checked:.1f} s, submission {submitted:.1f} s, collection "
          f"{time.time() - start:.1f} s", file=sys.stderr)
    return rows


def task(outdir, array_file):
    """An array task: runs the scenarios its index names in array_file, one
    after the other."""
    outdir = Path(outdir)
    names = json.loads(Path(array_file).read_text())[
        int(os.environ["SLURM_ARRAY_TASK_ID"])]
    c = fc.Campaign(outdir / "stage" / "campaign.json", outdir, only=names)
    by_name = {s["name"]: s for s in c.scenarios}
    for name in names:
        row = c.run_one(by_name[name])
        print(f"{name}: {row['outcome']}: {row.get('detail', '')}",
              flush=True)


def snapshots(outdir, names):
    """The snapshot job: saves each snapshot names for the array."""
    outdir = Path(outdir)
    c = fc.Campaign(outdir / "stage" / "campaign.json", outdir, only=[])
    disks = c.make_disks([c.snapshots[n] for n in names])
    for name in names:
        saved = fc.take_snapshot(outdir, name, c.snapshots[name], disks)
        print(f"saved {saved}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["task"]:
        task(*sys.argv[2:])
    elif sys.argv[1:2] == ["snapshots"]:
        snapshots(sys.argv[2], sys.argv[3:])
    else:
        sys.exit("campaign_slurm.py runs as a Slurm job of "
                 "scripts/fault-campaign --slurm")
