"""Start-up time of the ``ailib`` command and of ``import ailib``, next to a bare interpreter.

Each command runs in a new process, in alternating rounds (so a busy moment of the machine
falls on every command alike), and the median wall time of each is printed beside the
``python -c pass`` baseline measured in the same run::

    .venv/bin/python bench/startup_bench.py [--rounds N]

The goal is under 0.3 s for ``ailib --help`` and ``ailib --version``. ``ailib`` is the console
script installed next to this interpreter.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL = 0.300


def commands() -> dict[str, list[str]]:
    script = Path(sys.executable).with_name("ailib")
    if not script.exists():
        sys.exit(f"no ailib console script next to {sys.executable}; run `make install`")
    return {
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
        'python -c "import ailib"': [sys.executable, "-c", "import ailib"],
        "ailib --help": [str(script), "--help"],
        "ailib --version": [str(script), "--version"],
    }


def run_once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="runs of each command")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AILIB_", "PYTHON"))}
    todo = commands()
    times: dict[str, list[float]] = {name: [] for name in todo}
    for argv in todo.values():  # warm the file cache once, untimed
        run_once(argv, env)
    for _ in range(args.rounds):
        for name, argv in todo.items():
            times[name].append(run_once(argv, env))
    baseline = statistics.median(times["python -c pass (baseline)"])
    print(f"start-up, median of {args.rounds} runs each, alternating rounds, one process a run")
    print(f"{'command':<28} {'median':>9} {'min':>9} {'over baseline':>14}  goal")
    for name, samples in times.items():
        median = statistics.median(samples)
        goal = ""
        if name.startswith("ailib"):
            goal = f"< {GOAL * 1000:.0f} ms: " + ("met" if median < GOAL else "NOT MET")
        print(
            f"{name:<28} {median * 1000:>7.0f}ms {min(samples) * 1000:>7.0f}ms "
            f"{(median - baseline) * 1000:>12.0f}ms  {goal}"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(load average over the last minute: {load:.2f} on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
