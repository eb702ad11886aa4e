"""CPU time (utime + stime) and resident memory of a process tree from /proc, by role.

Consumes a root pid (the benchmark itself); produces, per role (broker JVM, worker, projector,
API, PostgreSQL with its backends, schema registry, the benchmark process), the CPU seconds
spent between two snapshots. The machine is shared, so CPU time is the figure a change can be
judged by: wall-clock rates move with the neighbours' load.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")
ROLES = (("kafka", "broker"), ("streams.worker", "worker"), ("projections.projector", "projector"),
         ("api.server", "api"), ("postgres", "postgres"), ("schema_registry", "registry"),
         ("registry", "registry"))


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int
    cpu_s: float  # utime + stime (and the reaped children's, which pg backends need)
    cmdline: str


def _read(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[0] is state (field 3): utime 14, stime 15, cutime 16, cstime 17 -> index 11..14
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return Proc(pid, int(fields[1]), (utime + stime + cutime + cstime) / _TICKS, cmd)


def tree(root: int) -> dict[int, Proc]:
    """Every live process descending from `root` (itself included)."""
    procs = {p.pid: p for p in (_read(int(n)) for n in os.listdir("/proc") if n.isdigit())
             if p is not None}
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            found[pid] = procs[pid]
            todo.extend(children.get(pid, ()))
    return found


def role(proc: Proc, root: int) -> str:
    if proc.pid == root:
        return "bench"
    for marker, name in ROLES:
        if marker in proc.cmdline:
            return name
    return "other"


def by_role(before: dict[int, Proc], after: dict[int, Proc], root: int) -> dict[str, float]:
    """CPU seconds per role between two `tree` snapshots (processes present in both or
    started in between; a process that ended in between is not counted)."""
    spent: dict[str, float] = {}
    for pid, proc in after.items():
        start = before.get(pid)
        delta = proc.cpu_s - (start.cpu_s if start is not None else 0.0)
        name = role(proc, root)
        spent[name] = spent.get(name, 0.0) + delta
    return spent


def rss_mb_by_role(root: int) -> dict[str, float]:
    """Resident memory (MiB) per role of `root`'s live tree now (PostgreSQL: its backends
    summed, shared buffers counted in each that touched them: an upper bound)."""
    resident: dict[str, float] = {}
    for proc in tree(root).values():
        kib = _rss_kib(proc.pid)
        if kib is not None:
            name = role(proc, root)
            resident[name] = round(resident.get(name, 0.0) + kib / 1024, 1)
    return resident


def _rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None  # a kernel thread or a zombie: no resident set


def pids_of(procs: Iterable[Proc], name: str, root: int) -> list[int]:
    return [p.pid for p in procs if role(p, root) == name]
