"""A bounded fuzz run in CI: mutated DICOM files and zips end in success or a DicomError, fast,
within a memory bound, and what loads renders off screen without crashing.

The mutation engine is benchmarks/fuzz.py (the larger campaign runs outside CI); a fixed seed
makes every run try the same inputs, so a failure here can be replayed with
``benchmarks/fuzz.py --seed 20261125 --inputs 400 --render-every 20 --out DIR``. Each input
runs in a forked child: a segfault is the child's signal, a memory blow-up its resident size.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz.py"
SEED = 20261125
INPUTS = 400
TIME_BOUND = 5.0
RENDER_EVERY = 20  # a render makes a GL context in its child (~0.5 s): every 20th input
MEMORY_LIMIT = 512 * 2**20  # resident bytes one input may add; the seeds are tiny


def _load_fuzz_module():
    spec = importlib.util.spec_from_file_location("mprviewer_fuzz", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fuzz():
    return _load_fuzz_module()


def test_mutated_inputs_end_in_success_or_dicom_error(fuzz, tmp_path: Path) -> None:
    fuzzer = fuzz.Fuzzer(seed=SEED, workdir=tmp_path / "work", keep=tmp_path / "failures",
                         time_bound=TIME_BOUND, render=True, render_every=RENDER_EVERY,
                         memory_limit=MEMORY_LIMIT)
    start = time.monotonic()
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
    # the render stage ran: about half the inputs load, every 20th input renders
    assert report.rendered >= INPUTS // RENDER_EVERY // 4
    assert 0 < report.peak_bytes <= MEMORY_LIMIT


def _segfault() -> dict:
    import ctypes

    ctypes.string_at(0)  # reads address 0: SIGSEGV, as a crashing decoder or VTK would
    return {"kind": "ok"}


def _blow_up() -> dict:
    hog = bytearray(b"\x01") * (400 * 2**20)  # written, so it is resident
    return {"kind": "ok", "detail": str(len(hog))}


def _hang() -> dict:
    time.sleep(60)
    return {"kind": "ok"}


def _raise() -> dict:
    raise ZeroDivisionError("not a DicomError")


@pytest.mark.parametrize(("work", "kind"), [
    (_segfault, "crash:SIGSEGV"),
    (_blow_up, "memory"),
    (_hang, "hang"),
    (_raise, "crash:ZeroDivisionError"),
    (lambda: {"kind": "ok", "detail": "", "rendered": 1}, "ok"),
])
def test_each_input_runs_in_a_child_that_is_watched(fuzz, work, kind) -> None:
    """The harness itself: what kills or bloats a child is reported, not suffered."""
    result, seconds, peak = fuzz.run_isolated(work, time_bound=0.5, memory_limit=100 * 2**20)
    assert result["kind"] == kind, result
    if kind == "crash:SIGSEGV":  # with the stack of where it happened, for the report
        assert "_segfault" in result["detail"]
    assert seconds < 10  # a hang is killed at twice the time bound, not waited for
    if kind == "memory":
        assert peak > 100 * 2**20
    if kind == "ok":
        assert result["rendered"] == 1 and peak < 100 * 2**20


def test_mutators_change_their_input_deterministically(fuzz) -> None:
    import random

    data = bytes(range(256)) * 8
    first = [fuzz.mutate_bytes(data, random.Random(n)) for n in range(30)]
    again = [fuzz.mutate_bytes(data, random.Random(n)) for n in range(30)]
    assert first == again
    assert sum(out != data for out, _ in first) >= 28
    assert {op for _, op in first} >= {"flip", "truncate"}
