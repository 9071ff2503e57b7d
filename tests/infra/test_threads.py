"""One native thread per process (infra.threads), in this process and in a fresh one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from threadpoolctl import threadpool_info

from infra.threads import one_thread_per_process

PROBE = (
    "import json, os; from threadpoolctl import threadpool_info; "
    "from infra.threads import one_thread_per_process; one_thread_per_process(); "
    "print(json.dumps({'blas': [p['num_threads'] for p in threadpool_info() "
    "if p['user_api'] == 'blas'], 'omp': os.environ['OMP_THREAD_LIMIT']}))"
)


def probe(env: dict[str, str]) -> tuple[list[int], str]:
    """The BLAS libraries' thread counts and OMP_THREAD_LIMIT in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout)
    return [int(n) for n in found["blas"]], str(found["omp"])


def clean_environment() -> dict[str, str]:
    names = ("OMP_THREAD_LIMIT", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    return {k: v for k, v in os.environ.items() if k not in names}


def test_the_test_session_runs_one_blas_thread_as_the_workers_do() -> None:
    one_thread_per_process()  # idempotent: the session already called it
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    assert blas, "numpy's BLAS was not found"
    assert all(p["num_threads"] == 1 for p in blas)


def test_a_fresh_process_gets_one_blas_thread_and_one_tesseract_thread() -> None:
    blas, omp = probe(clean_environment())
    assert blas and all(n == 1 for n in blas)
    assert omp == "1"


def test_an_operators_own_thread_counts_are_kept() -> None:
    env = {**clean_environment(), "OPENBLAS_NUM_THREADS": "2", "OMP_THREAD_LIMIT": "3"}
    blas, omp = probe(env)
    assert blas and all(n == 2 for n in blas)
    assert omp == "3"


def test_a_thread_count_that_is_not_a_number_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "all")
    with pytest.raises(ValueError, match=r"OPENBLAS_NUM_THREADS.*'all'"):
        one_thread_per_process()
