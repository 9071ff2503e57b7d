"""One native thread per Golos process, set once at each process's start.

Golos scales by process: a worker reads one photo at a time and runs one worker
process per core; the API runs one process per core. The native libraries under
it would each start a thread per core for every call as well: Tesseract (OpenMP)
and OpenBLAS (numpy's, scipy's). With every core already running a process of
ours, those threads only contend, and OpenBLAS's spin-waiting threads make a
small product far slower. Measured on the 2-core machine (2026-12-04), the
second key of one ballot's scene (a 256 x 5,929 float32 matrix times a vector,
``ocr.scene.scene_key``) took 7.8 ms with the other core busy and 0.12 ms with
one BLAS thread; two ballot readers side by side spent 205-215 ms of CPU per
photo, 162-177 ms with one thread (wall 380-414 ms against 326-329 ms).

Called by every entry point that reads photos or serves requests (``golos
worker`` and its worker processes, the API's start, the ``golos ocr`` commands,
the benchmarks and the test session). Not pure: it sets the process's state.
"""

from __future__ import annotations

import os

from threadpoolctl import threadpool_limits

# Read by the libraries when they load: OpenMP (Tesseract's) and OpenBLAS
# libraries loaded after this call start with one thread.
_ENVIRONMENT = ("OMP_THREAD_LIMIT", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def one_thread_per_process() -> None:
    """Limit Tesseract's and the BLAS libraries' threads to one in this process
    and in the programs it starts; a value already set in the environment is
    kept (an operator's choice). Idempotent."""
    for name in _ENVIRONMENT:
        os.environ.setdefault(name, "1")
    value = os.environ["OPENBLAS_NUM_THREADS"]
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"OPENBLAS_NUM_THREADS must be a whole number of threads, not {value!r}")
    import numpy  # noqa: F401  (its BLAS loaded, so that the limit reaches it)

    # The libraries already loaded (numpy's OpenBLAS at least): their thread pools
    # set to that many threads now, for the rest of the process.
    threadpool_limits(limits=int(value), user_api="blas")
