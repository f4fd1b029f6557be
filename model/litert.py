"""LiteRT in the worker: a TFLite model called from Beam's threads, and the process settings it wants.

Used by both LiteRT runtimes: the trained models' split network on log-mel patches (``model.serving``) and
the whole-model packs on waveform windows (``model.litert_waveform``).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np

from model.native_logs import info_logs_hidden

# Windows per LiteRT invoke within a call. The CNN is compute-bound (~90 GFLOP/s on one core, near the FMA
# units' peak) as long as its activations stay in the core's cache: conv0's output is 400 KB a window.
# Measured on the demo CNN, one thread, CPU ms per window: 0.42 at 1-4 windows per invoke, 0.46 at 8,
# 0.48 at 16-32, 0.57 at 64 (`python -m benchmarks.stages`, LiteRT rows).
LITERT_WINDOWS_PER_INVOKE = 4


# Parts a call's windows are split into, per pool thread: a pool thread that has finished a part takes the next
# part of any waiting call, so a call's shorter part does not leave a thread idle while Beam's threads are busy
# elsewhere (a folder of short files: calls of 5 BirdNET windows). Side by side at load 5-6 on 40 files of 15 s,
# with 4 parts per thread the steady state used 1.82 cores against 1.78 for one interpreter per Beam thread,
# where one part per thread had used fewer than that (load 2-3, noisy). A part costs ~30 us of queueing against
# 34 ms a BirdNET window (~1.7 ms an invoke of 4 windows for the demo CNN).
PARTS_PER_THREAD = 4


class LiteRTModel:
    """The LiteRT classifier, shared by the threads of a worker process (Beam shares one loaded model between
    them). An interpreter is not thread-safe, so each thread that invokes has its own, one per input shape
    (allocated once, never resized back and forth); ``invoke`` releases the GIL.

    A call's windows go through the network ``windows_per_invoke`` at a time. ``concurrency`` None: in the
    calling thread. ``concurrency`` n: on a pool of n threads owned by the model, each with its own interpreter:
    a call's windows are split into contiguous parts (``split``, ``PARTS_PER_THREAD`` per thread), each scored
    by whichever pool thread is free, so one long file's windows use n cores; whatever number of threads call,
    at most n invokes run at once and the process holds n interpreters (BirdNET's is 79 MiB). The parts are cut
    on the same ``windows_per_invoke`` boundaries as one thread's loop, so each window goes through the same
    invokes and the scores are the same bit for bit.
    """

    def __init__(self, model_content: bytes, num_threads: int = 1,
                 windows_per_invoke: int = LITERT_WINDOWS_PER_INVOKE, concurrency: Optional[int] = None):
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401  (fails here, at load, if missing)

        self._content = model_content
        self._num_threads = num_threads
        self._windows_per_invoke = windows_per_invoke
        self._local = threading.local()
        self.concurrency = concurrency
        self._pool = (ThreadPoolExecutor(concurrency, thread_name_prefix='litert') if concurrency else None)

    def _interpreter(self, shape: tuple[int, ...]):
        by_shape = getattr(self._local, 'by_shape', None)
        if by_shape is None:
            by_shape = self._local.by_shape = {}
        state = by_shape.get(shape)
        if state is None:
            from ai_edge_litert.interpreter import Interpreter

            # LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate" line, at creation and first allocation.
            with info_logs_hidden():
                interpreter = Interpreter(model_content=self._content, num_threads=self._num_threads)
                input_index = interpreter.get_input_details()[0]['index']
                interpreter.resize_tensor_input(input_index, list(shape))
                interpreter.allocate_tensors()
            state = by_shape[shape] = (interpreter, input_index, interpreter.get_output_details()[0]['index'])
        return state

    def _invoke(self, patches: np.ndarray) -> np.ndarray:
        interpreter, input_index, output_index = self._interpreter(patches.shape)
        interpreter.set_tensor(input_index, patches)
        interpreter.invoke()
        return interpreter.get_tensor(output_index)  # a copy

    def _score(self, patches: np.ndarray) -> np.ndarray:
        step = self._windows_per_invoke
        if len(patches) <= step:
            return self._invoke(patches)
        return np.concatenate([self._invoke(patches[i:i + step]) for i in range(0, len(patches), step)])

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        patches = np.ascontiguousarray(patches, dtype=np.float32)
        if self._pool is None:
            return self._score(patches)
        parts = [self._pool.submit(self._score, patches[start:stop]) for start, stop in
                 split(len(patches), self._windows_per_invoke, PARTS_PER_THREAD * (self.concurrency or 1))]
        if len(parts) == 1:
            return parts[0].result()
        return np.concatenate([part.result() for part in parts])


def split(windows: int, windows_per_invoke: int, parts: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of a call's windows: at most ``parts`` contiguous ranges of nearly equal size that
    cover every window once, each starting on a multiple of ``windows_per_invoke`` (the invokes of one loop)."""
    invokes = -(-windows // windows_per_invoke)
    size = -(-invokes // max(1, parts)) * windows_per_invoke
    return [(start, min(windows, start + size)) for start in range(0, windows, size)] if windows else []


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: what a container or taskset grants it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        return os.cpu_count() or 1


def pool_size(scoring_threads: int) -> int:
    """The LiteRT pool of this worker process: ``scoring_threads`` (what the runner gives the process, chosen
    when the pipeline is built: ``pipeline.local_runner.scoring_threads``), 0 meaning every core the process
    may use, and never more than those cores (more threads than cores only add interpreters)."""
    cores = usable_cores()
    return cores if scoring_threads <= 0 else min(scoring_threads, cores)


def one_blas_thread() -> None:
    """Limits numpy's BLAS (OpenBLAS) to one thread in this process.

    Beam's threads or processes already keep every core busy; OpenBLAS's own threads on top of them only
    spin. Measured on the 2-core machine under load: the front end's mel matmul took 0.18 ms of CPU per 5-s
    file with one BLAS thread and 2.6 ms with OpenBLAS's default, which made LiteRT serving slower than
    TensorFlow's.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # then OPENBLAS_NUM_THREADS=1 in the environment does the same
        return
    threadpool_limits(1, user_api='blas')


def litert_available() -> bool:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True
