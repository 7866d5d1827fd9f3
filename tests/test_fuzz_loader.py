"""A bounded fuzz run in CI: mutated DICOM files and zips end in success or a DicomError, fast.

The mutation engine is benchmarks/fuzz.py (the larger campaign runs outside CI); a fixed seed
makes every run try the same inputs, so a failure here can be replayed with
``benchmarks/fuzz.py --seed 20261125 --inputs 400 --out DIR``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz.py"
SEED = 20261125
INPUTS = 400
TIME_BOUND = 5.0


def _load_fuzz_module():
    spec = importlib.util.spec_from_file_location("mprviewer_fuzz", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def address_space_headroom(gib: float) -> Iterator[None]:
    """Cap this process's address space a few GiB above what it maps now, so an input that
    makes the loader allocate without bound fails as a MemoryError instead of exhausting
    the machine's memory."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as status:
        mapped_kib = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    cap = mapped_kib * 1024 + int(gib * 1024**3)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.fixture(scope="module")
def fuzz():
    return _load_fuzz_module()


def test_mutated_inputs_end_in_success_or_dicom_error(fuzz, tmp_path: Path) -> None:
    fuzzer = fuzz.Fuzzer(seed=SEED, workdir=tmp_path / "work", keep=tmp_path / "failures",
                         time_bound=TIME_BOUND)
    start = time.monotonic()
    with address_space_headroom(4.0):
        report = fuzzer.run(INPUTS)
    elapsed = time.monotonic() - start
    assert report.tried == INPUTS
    failures = "\n".join(f"{kind}: {detail[:2000]}" for kind, detail in report.crashes)
    assert not report.crashes, f"{len(report.crashes)} inputs broke the loader:\n{failures}"
    dicom_errors = fuzz.dicom_error_names()
    assert {"DicomError", "SourceError", "NoImagesError"} <= dicom_errors
    assert set(report.outcomes) <= {"ok", "partial"} | dicom_errors
    # The mutations reach both sides: some inputs still load, some are refused.
    assert report.outcomes["ok"] + report.outcomes["partial"] > INPUTS // 10
    assert sum(n for kind, n in report.outcomes.items() if kind in dicom_errors) > INPUTS // 10
    assert report.slowest <= TIME_BOUND
    assert elapsed < INPUTS * TIME_BOUND


def test_mutators_change_their_input_deterministically(fuzz) -> None:
    import random

    data = bytes(range(256)) * 8
    first = [fuzz.mutate_bytes(data, random.Random(n)) for n in range(30)]
    again = [fuzz.mutate_bytes(data, random.Random(n)) for n in range(30)]
    assert first == again
    assert sum(out != data for out, _ in first) >= 28
    assert {op for _, op in first} >= {"flip", "truncate"}
