"""Fuzzed calls: the test suite's strategies (tests/test_calls.py), many more examples, through parse and
validate, and the accepted calls joined into sequences through parse_calls. Nothing may raise but a CallError of
one printable line, and every accepted call or sequence must come back the same from parse(str(...)).

Usage: .venv/bin/python bench/fuzz_calls.py [EXAMPLES]   (each example is one to three cases; default 50,000)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from skills import BUILTIN_DIR, CallError, Registry, skill  # noqa: E402
from tests.test_calls import _cases, _one_printable_line, _round_trips, knobs  # noqa: E402


def main() -> None:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    registry = Registry()
    registry.load_dir(BUILTIN_DIR)
    registry.add(skill(knobs).__skill__)
    counts = {"accepted": 0, "refused": 0, "sequences": 0}

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.lists(_cases(), min_size=1, max_size=3))
    def fuzz(cases: list) -> None:
        calls = []
        for kind, given_ in cases:
            try:
                call = registry.parse(given_) if kind == "parse" else registry.validate(*given_)
            except CallError as exc:
                _one_printable_line(exc)
                counts["refused"] += 1
            else:
                _round_trips(registry, call)
                counts["accepted"] += 1
                calls.append(call)
        if len(calls) > 1:
            try:
                sequence = registry.parse_calls("; ".join(map(str, calls)))
            except CallError as exc:
                _one_printable_line(exc)
            else:
                assert registry.parse_calls(str(sequence)) == sequence
                counts["sequences"] += 1

    started = time.perf_counter()
    fuzz()
    print(f"{counts['accepted'] + counts['refused']} fuzzed calls: {counts['accepted']} accepted and round-tripped, "
          f"{counts['refused']} refused with one line; {counts['sequences']} sequences round-tripped; "
          f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
