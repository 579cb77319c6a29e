"""What the benchmark scripts share: how much of the CPU other processes took meanwhile."""

from __future__ import annotations

import os
import resource
import time


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
