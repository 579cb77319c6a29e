"""What the benchmark scripts share: the job runner (each job a fresh process, as Snakemake
runs `script:` rules), the workflow's configuration, the toy dataset, and how much of the
CPU other processes took meanwhile."""

from __future__ import annotations

import functools
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "workflow" / "scripts") not in sys.path:  # this checkout's library first
    sys.path.insert(0, str(REPO / "workflow" / "scripts"))


class CpuShare:
    """CPU seconds used by other processes on this machine between start() and report().

    Busy time of all CPUs from /proc/stat minus this process's and its children's CPU
    time (getrusage); a benchmark on a shared machine says how shared it was.
    """

    def __init__(self):
        self.start()

    @staticmethod
    def _busy() -> float | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own() -> float:
        s, c = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

    def start(self) -> None:
        self.t0, self.busy0, self.own0 = time.perf_counter(), self._busy(), self._own()

    def report(self) -> str:
        wall, busy = time.perf_counter() - self.t0, self._busy()
        if busy is None or self.busy0 is None:
            return "CPU sharing unknown (no /proc/stat)"
        own = self._own() - self.own0
        other = max(0.0, busy - self.busy0 - own)
        cpus = os.cpu_count() or 1
        return (
            f"CPU: this benchmark {own:.1f} CPU-s, other processes {other:.1f} CPU-s, of "
            f"{wall * cpus:.1f} available ({cpus} CPUs x {wall:.1f} s wall)"
        )


def vm_hwm_mb() -> float | None:
    """This process's own peak RSS (VmHWM of its address space), MiB; None without /proc.

    Not ru_maxrss: Linux carries a parent's RSS at fork over into the child's.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# --- jobs in fresh processes, as Snakemake runs `script:` rules ---------------------------

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
RESULT = "RESULT "


@dataclass
class Job:
    """One job: a command that ends by printing a RESULT line (`print_result`)."""

    name: str
    command: list[str]
    deps: list[str] = field(default_factory=list)
    kind: str = ""
    start: float = 0.0  # seconds since run_jobs began
    end: float = 0.0
    peak_mb: float = 0.0  # the job's own VmHWM, else the wait4 figure
    wait4_mb: float = 0.0  # ru_maxrss of the process (an upper bound: see vm_hwm_mb)
    report: dict = field(default_factory=dict)

    @property
    def wall(self) -> float:
        return self.end - self.start


def job_argv(args, skip=("job", "layer", "keep")) -> list[str]:
    """The command-line options that give a job the parent's settings (argparse's dest
    names back to --options; None and False left out, lists as several values)."""
    argv = []
    for name, value in vars(args).items():
        if name in skip or value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)]
        else:
            argv.append(f"{flag}={value}")
    return argv


def print_result(report: dict) -> None:
    """The job's side: its figures, its own peak RSS and CPU time, as one RESULT line."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report = {**report, "vm_hwm_mb": vm_hwm_mb(), "cpu_s": usage.ru_utime + usage.ru_stime}
    print(RESULT + json.dumps(report), flush=True)


def run_jobs(jobs: list[Job], cores: int, logs: Path, threads: int = 1) -> float:
    """Run `jobs` along their dependencies, at most `cores` at once, in list order where
    free to choose; each job's log goes to <logs>/<name>.log. `threads` > 0 sets the
    OMP/OpenBLAS/MKL thread variables to it, as Snakemake sets them to a rule's `threads`
    (0 leaves them unset: BLAS then takes every core). Returns the wall time; fills each
    job's start, end, report and peak RSS. A failed job stops the others and raises with
    the end of its log."""
    env = dict(os.environ)
    if threads > 0:
        env.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    logs.mkdir(parents=True, exist_ok=True)
    done: set[str] = set()
    waiting = list(jobs)
    running: dict[int, tuple[Job, subprocess.Popen, object]] = {}
    t0 = time.perf_counter()
    while waiting or running:
        for job in [j for j in waiting if set(j.deps) <= done]:
            if len(running) >= cores:
                break
            waiting.remove(job)
            out = open(logs / f"{job.name}.log", "w")  # noqa: SIM115 - closed when it ends
            job.start = time.perf_counter() - t0
            proc = subprocess.Popen(job.command, stdout=out, stderr=subprocess.STDOUT, env=env)
            running[proc.pid] = (job, proc, out)
        if not running:
            raise RuntimeError(f"jobs whose dependencies never finish: {waiting}")
        pid, status, usage = os.wait4(-1, 0)
        if pid not in running:
            continue
        job, proc, out = running.pop(pid)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.close()
        job.end, job.wait4_mb = time.perf_counter() - t0, usage.ru_maxrss / 1024
        text = (logs / f"{job.name}.log").read_text()
        if proc.returncode != 0:
            for _, other, _ in running.values():
                other.kill()
            raise RuntimeError(f"job {job.name} failed ({proc.returncode}):\n{text[-4000:]}")
        lines = [x for x in text.splitlines() if x.startswith(RESULT)]
        job.report = json.loads(lines[-1][len(RESULT) :]) if lines else {}
        job.peak_mb = job.report.get("vm_hwm_mb") or job.wait4_mb
        print(
            f"  {job.name:<16} {job.wall:7.1f} s  peak RSS {job.peak_mb:6.0f} MiB "
            f"(wait4 ru_maxrss {job.wait4_mb:.0f} MiB)",
            flush=True,
        )
        done.add(job.name)
    return time.perf_counter() - t0


# --- what the workflow would run with ------------------------------------------------------


@functools.cache
def workflow_config(path: str | Path = REPO / "config" / "config.yaml") -> dict:
    """The workflow's configuration, validated against its schema with defaults filled in:
    the benchmarks run the rules' steps with the settings the rules get."""
    import yaml

    from vlmbinding.workflow.config import validate_config

    config = yaml.safe_load(Path(path).read_text())  # cached: every caller shares one dict
    return validate_config(config, REPO / "config" / "schema.yaml")


def toy_dataset(folder: Path, n_images: int, seed: int, vocab=None, counts=(1, 2, 3, 4, 5)):
    """A toy-shapes dataset of at least n_images images, an equal number per object count,
    as <folder>/images/ with images.parquet and objects.parquet; reused when present.
    Returns the seconds spent drawing it."""
    from vlmbinding.data import toyshapes as ds
    from vlmbinding.data.vocab import Vocabulary

    if (folder / "images.parquet").exists() and (folder / "objects.parquet").exists():
        return 0.0
    t0 = time.perf_counter()
    per_count = -(-n_images // len(counts))
    images, objects = ds.generate_dataset(
        folder / "images", vocab or Vocabulary(), list(counts), per_count, seed
    )
    ds.write_table(images, folder / "images.parquet")
    ds.write_table(objects, folder / "objects.parquet")
    return time.perf_counter() - t0
