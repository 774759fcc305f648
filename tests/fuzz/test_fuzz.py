"""The seeded mutation run of tools/fuzz.py, at a small fixed size (`make fuzz` runs thousands):
every command on mutated real fixtures and synth trees ends in exit 0/1/2, with no
traceback, nothing written outside its workspace, and within the time cap."""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import fuzz  # noqa: E402  (tools/ is not a package)
from fuzz_mutations import BYTE_MUTATIONS  # noqa: E402

CASES = 70


@pytest.mark.slow
def test_mutated_inputs_through_every_command():
    outcomes = fuzz.run_cases(CASES, seed=12)
    failed = [f"#{o.case} {o.target} {o.file} {o.mutation}: {'; '.join(o.failures)} ({' '.join(o.args)})"
              for o in outcomes if o.failures]
    assert not failed, "\n".join(failed)
    assert {o.target for o in outcomes} == {t.name for t in fuzz.TARGETS}
    codes = Counter(o.exit_code for o in outcomes)
    assert codes[0] and codes[2]  # the mutations reach both clean runs and refusals


def test_mutations_are_seeded_and_change_the_bytes():
    data = b'{"images": [[1, 2, 3]], "name": "a"}\nline two\n'
    for name, mutation in BYTE_MUTATIONS.items():
        once, again = mutation(random.Random(5), data), mutation(random.Random(5), data)
        assert once == again, name
        if name not in ("flip_bytes", "swap_lines", "odd_number"):  # these may, by chance, keep the bytes
            assert once != data, name
