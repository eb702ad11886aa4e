"""Two revisions side by side: A, B, A, B, ... of one benchmark command, then medians and ratios.

This machine's speed drifts by ±15 % and more from one run to the next, so a change is judged
only against runs taken in the same stretch of time, interleaved. Each revision is checked out
into a throwaway git worktree that shares this checkout's virtualenv (a module run with
`python -m` is imported from the working directory first, and so are the processes the
benchmark starts), and the command runs there, once per round and side.

`python -m bench.ab --a 512e1f9 --b HEAD --rounds 3 -- -m bench.cpu_per_order --rounds 1`
prints each run as it ends (stderr) and the summary as JSON (stdout). The command must print
one JSON object on stdout: `bench.cpu_per_order`, `bench.open_loop`, `bench.idle_cpu` do.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SIDES = ("A", "B")


def figures(report: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Every number of a benchmark's JSON, by dotted path; lists of runs are left out (the
    medians a benchmark reports are what is compared)."""
    found: dict[str, float] = {}
    for key, value in report.items():
        path = f"{prefix}{key}"
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            found[path] = float(value)
        elif isinstance(value, Mapping):
            found |= figures(value, f"{path}.")
    return found


def summary(runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per figure both sides' runs, their medians and B's median over A's."""
    by_side = {side: [figures(run) for run in runs[side]] for side in SIDES}
    shared = set.intersection(*(set(run) for side in SIDES for run in by_side[side])) \
        if all(by_side.values()) else set()
    table: dict[str, dict[str, Any]] = {}
    for name in sorted(shared):
        a = [run[name] for run in by_side["A"]]
        b = [run[name] for run in by_side["B"]]
        median_a, median_b = statistics.median(a), statistics.median(b)
        table[name] = {"A": a, "B": b, "median_A": median_a, "median_B": median_b,
                       "B/A": round(median_b / median_a, 3) if median_a else None}
    return table


@contextmanager
def worktree(repo: Path, revision: str, root: Path) -> Iterator[Path]:
    """`revision` checked out under `root`, sharing `repo`'s virtualenv; removed after."""
    path = root / revision.replace("/", "_")
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", "-q", str(path),
                    revision], check=True)
    try:
        (path / ".venv").symlink_to(repo / ".venv")
        yield path
    finally:
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(path)],
                       check=False)


def one_run(checkout: Path, command: Sequence[str]) -> dict[str, Any]:
    done = subprocess.run([str(checkout / ".venv" / "bin" / "python"), *command],
                          cwd=checkout, capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    if not isinstance(report, dict):
        raise ValueError(f"{' '.join(command)} printed no JSON object")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab")
    parser.add_argument("--a", required=True, help="the revision to compare against")
    parser.add_argument("--b", default="HEAD", help="the revision under test")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="after --: the python arguments of the benchmark")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the benchmark after --, e.g. -- -m bench.cpu_per_order --rounds 1")
    repo = Path.cwd()
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="oee-ab-") as root, \
            worktree(repo, args.a, Path(root)) as a, worktree(repo, args.b, Path(root)) as b:
        checkouts = dict(zip(SIDES, (a, b), strict=True))
        for round_ in range(args.rounds):
            for side in SIDES:
                runs[side].append(one_run(checkouts[side], command))
                print(json.dumps({"side": side, "round": round_, **runs[side][-1]}),
                      file=sys.stderr, flush=True)
    json.dump({"a": args.a, "b": args.b, "command": command, "figures": summary(runs)},
              sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
