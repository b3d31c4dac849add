"""What running skills in worker processes costs: per call, at the first call, and after a worker is killed.

    .venv/bin/python bench/dispatch_bench.py [--calls N]

Dispatches ``other()`` (a skill that does nothing) N times in a worker process and N times in a thread of this
process (``Registry(isolate=False)``, how every skill ran before), and prints the median and 90th percentile of
each and their difference: the cost per call of the worker. Then the first call of a fresh process (the zygote
started, a worker forked, the built-in skill files loaded) and the first call after a worker was killed at its
limit (the replacement already forked). Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

from skills import SkillCall, SkillContext, SkillSettings, load_registry, worker


def _timed(registry, call: SkillCall) -> float:
    start = time.perf_counter()
    result = registry.dispatch(call)
    assert result.ok or call.name == "spin", result.text
    return 1000 * (time.perf_counter() - start)


def _summary(times: list[float]) -> str:
    times = sorted(times)
    return f"median {statistics.median(times):.3f} ms, p90 {times[int(0.9 * len(times))]:.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    (folder / "spin.py").write_text(textwrap.dedent('''
        import re

        from skills import skill

        @skill(timeout_s=0.5)
        def spin() -> str:
            """Backtrack for ever in C."""
            return str(re.match(r"(a+)+$", "a" * 40 + "b"))
    '''))
    context = SkillContext(SkillSettings(notes_db=folder / "notes.db"))
    isolated = load_registry(context, folder)
    start = time.perf_counter()
    isolated.dispatch(SkillCall("other"))
    first_ms = 1000 * (time.perf_counter() - start)
    here = load_registry(context, folder)
    here.isolate = False
    call = SkillCall("other")
    for registry in (isolated, here):  # warm up both paths
        for _ in range(50):
            registry.dispatch(call)
    in_worker, in_thread = [], []
    for _ in range(args.calls):  # interleaved, so that a busy moment of the machine falls on both
        in_worker.append(_timed(isolated, call))
        in_thread.append(_timed(here, call))
    _timed(isolated, SkillCall("spin"))
    after_kill_ms = _timed(isolated, call)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{args.calls} calls of other() each")  # fmt: skip
    print(f"worker process: {_summary(in_worker)}")
    print(f"thread (before): {_summary(in_thread)}")
    print(f"cost per call: {statistics.median(in_worker) - statistics.median(in_thread):+.3f} ms (median)")
    print(f"first call of a process (zygote, fork, load the built-ins): {first_ms:.0f} ms")
    print(f"first call after a worker was killed: {after_kill_ms:.1f} ms")
    worker.shutdown()


if __name__ == "__main__":
    main()
