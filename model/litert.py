"""LiteRT in the worker: a TFLite model called from Beam's threads, and the process settings it wants.

Used by both LiteRT runtimes: the trained models' split network on log-mel patches (``model.serving``) and
the whole-model packs on waveform windows (``model.litert_waveform``).
"""
from __future__ import annotations

import threading

import numpy as np

from model.native_logs import info_logs_hidden

# Windows per LiteRT invoke within a call. The CNN is compute-bound (~90 GFLOP/s on one core, near the FMA
# units' peak) as long as its activations stay in the core's cache: conv0's output is 400 KB a window.
# Measured on the demo CNN, one thread, CPU ms per window: 0.42 at 1-4 windows per invoke, 0.46 at 8,
# 0.48 at 16-32, 0.57 at 64 (`python -m benchmarks.stages`, LiteRT rows).
LITERT_WINDOWS_PER_INVOKE = 4


class LiteRTModel:
    """The LiteRT classifier; one interpreter per calling thread and input shape (an interpreter is not
    thread-safe, and Beam shares one loaded model between the threads of a worker). ``invoke`` releases the GIL.

    A call's windows go through the network ``windows_per_invoke`` at a time, each size with its own
    interpreter (allocated once, never resized back and forth).
    """

    def __init__(self, model_content: bytes, num_threads: int = 1,
                 windows_per_invoke: int = LITERT_WINDOWS_PER_INVOKE):
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401  (fails here, at load, if missing)

        self._content = model_content
        self._num_threads = num_threads
        self._windows_per_invoke = windows_per_invoke
        self._local = threading.local()

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

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        patches = np.ascontiguousarray(patches, dtype=np.float32)
        step = self._windows_per_invoke
        if len(patches) <= step:
            return self._invoke(patches)
        return np.concatenate([self._invoke(patches[i:i + step]) for i in range(0, len(patches), step)])


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
