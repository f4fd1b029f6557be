"""RunInference model handlers: one file's waveform in, its per-window probabilities out.

Each element is a whole file's mono waveform at the model's rate. The handler
cuts it into fixed-length windows (zero-copy views), runs every window of the
batch through the model in chunks of at most ``max_windows_per_call``, and
returns one ``FileScores`` (a ``PredictionResult`` plus its labels) per file whose ``inference`` is a
``[windows, labels]`` float32 array and whose ``model_id`` is the model
version. Batching whole files (weighted by their window count) rather than
windows keeps the graph free of a shuffle of samples and of a stateful
re-assembly step in streaming, and keeps memory bounded for long files.

One handler class per runtime, as in Beam's own ``apache_beam.ml.inference``; they share the windowing,
chunking and batching of ``WindowedClassifierHandler`` and differ only in how they load a model and score a
block of model inputs (``score_windows``):

- ``SavedModelHandler`` (here): the exported TensorFlow SavedModel, in the worker;
- ``LiteRTHandler`` (``model.serving``): the LiteRT file the export lists, in the worker;
- ``VertexEndpointHandler`` (``model.vertex_handler``): a Vertex AI endpoint.

The in-worker ones (``InWorkerHandler``) also take model updates and can keep their model loaded for the
life of the process. All return the same type, so nothing downstream depends on the runtime.
``model.serving.local_handler`` chooses the in-worker runtime; ``pipeline.handler_choice`` chooses among all.
"""
from __future__ import annotations

import abc
import functools
import logging
import sys
import threading
from typing import Any, Iterable, Iterator, NamedTuple, Optional, Sequence

import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler

from model.litert import pool_size
from model.local_copy import local_model_dir
from model.metadata import (INPUT_NAME, OUTPUT_NAME, SIGNATURE, ModelMetadata, incompatibilities, load_metadata,
                            model_dir_of)
from model.native_logs import info_logs_hidden

METRICS_NAMESPACE = 'AudioClassifier'
_LOGGER = logging.getLogger(__name__)


class FileScores(NamedTuple):
    """One file's scores: Beam's ``PredictionResult`` fields, plus the labels of the model that scored it.

    The labels travel with the scores so that the aggregation names each column after the model that
    produced it, never after a model the graph was built with.
    """
    example: Any
    inference: np.ndarray          # [windows, labels] probabilities
    model_id: str                  # the model's version
    labels: tuple[str, ...]        # the column names of ``inference``, in order
    # Set when the model refused this file (a remote endpoint's 400 or malformed answer for its windows alone):
    # why, for its permanent error row; ``inference`` is then empty.
    error: Optional[str] = None
# The in-worker model is called on at most this many windows at a time: TensorFlow's working memory grows with
# the call (about 1 MB per window for the demo model) while the cost per window stops falling beyond ~64.
TF_WINDOWS_PER_CALL = 64


def iter_windows(samples: np.ndarray, metadata: ModelMetadata) -> Iterator[np.ndarray]:
    """Yields ``[window_samples]`` windows, hop apart; the last is zero-padded. Views of a float32 array, not
    copies (``audio.pcm.PcmSamples``: each window read as float32)."""
    w, hop = metadata.window_samples, metadata.hop_samples
    n = metadata.window_count(len(samples))
    for i in range(n):
        window = samples[i * hop:i * hop + w]
        if len(window) < w:
            window = np.pad(window, (0, w - len(window)))
        yield window


def import_tensorflow_for_serving():
    """``import tensorflow``, minus the Keras import it makes eagerly when nothing has imported it yet.

    TensorFlow's ``__init__`` imports ``keras.src.optimizers`` (to register Keras optimizers for SavedModels
    that hold them) and skips it if that raises ImportError. Serving a SavedModel signature needs no Keras,
    and that import brings in all of Keras, scikit-learn and pyplot: about 110 MB of every worker process,
    a tenth of the memory budget for a one-hour file. Keras still imports normally later if anything asks.
    """
    if 'tensorflow' in sys.modules:
        return sys.modules['tensorflow']
    blocked = 'keras.src.optimizers'  # (Keras imports TensorFlow, so it cannot be loaded yet either)
    # None in sys.modules makes `import keras.src.optimizers` raise ImportError (the import system's documented
    # rule; typeshed types the mapping as modules only).
    sys.modules[blocked] = None  # type: ignore[assignment]
    with info_logs_hidden():  # TensorFlow's C++ start-up INFO lines, which ignore TF_CPP_MIN_LOG_LEVEL
        try:
            import tensorflow as tf
        except ImportError:  # a TensorFlow that no longer tolerates it: import it the ordinary way
            del sys.modules[blocked]
            import tensorflow as tf
        finally:
            sys.modules.pop(blocked, None)
    return tf


def element_windows(metadata: ModelMetadata, element) -> int:
    """BatchElements' size of an element: its file's window count. Elements reach it keyed: (key, waveform)."""
    samples = element[1] if isinstance(element, tuple) else element
    return metadata.window_count(len(samples))


class WindowedClassifierHandler(ModelHandler[np.ndarray, FileScores, Any], abc.ABC):
    """Shared windowing, chunking and batching for every way of scoring windows."""

    def __init__(self, model_uri: str, *, min_batch_size: int = 1, max_batch_size: int = 256,
                 max_batch_duration_secs: Optional[int] = None, metadata: Optional[ModelMetadata] = None):
        """Batch sizes count model windows, not files: a batch of long files stays bounded in memory."""
        super().__init__()
        self._model_uri = model_uri
        self._metadata = metadata or load_metadata(model_uri)
        self._max_windows_per_call = max_batch_size
        self._batching = {'min_batch_size': min_batch_size, 'max_batch_size': max_batch_size,
                          'element_size_fn': functools.partial(element_windows, self._metadata.windowing_only())}
        if max_batch_duration_secs:
            self._batching['max_batch_duration_secs'] = max_batch_duration_secs

    @property
    def metadata(self) -> ModelMetadata:
        return self._metadata

    runtime: str = ''   # what serves the model: 'savedmodel', 'litert', 'vertex'

    @abc.abstractmethod
    def score_windows(self, model: Any, windows: np.ndarray) -> np.ndarray:
        """``[n, *model_input_shape()]`` float32 model inputs -> ``[n, labels]`` probabilities."""

    def model_input_shape(self) -> tuple[int, ...]:
        """One window's model input: by default the waveform window itself."""
        return (self._metadata.window_samples,)

    def window_inputs(self, samples: np.ndarray) -> Iterator[np.ndarray]:
        """One file's model inputs in window order, as ``[k, *model_input_shape()]`` blocks."""
        for window in iter_windows(samples, self._metadata):
            yield window[np.newaxis]

    def file_inputs(self, batch: Sequence[np.ndarray]) -> Iterator[Iterable[np.ndarray]]:
        """Each file's ``window_inputs``, in batch order; a runtime may compute several files' at once."""
        return (self.window_inputs(samples) for samples in batch)

    def windows_per_call(self) -> int:
        return self._max_windows_per_call

    def run_inference(self, batch: Sequence[np.ndarray], model: Any,
                      inference_args: Optional[dict[str, Any]] = None) -> Iterable[FileScores]:
        metadata = self._metadata
        counts = [metadata.window_count(len(samples)) for samples in batch]
        scores = np.empty((sum(counts), len(metadata.labels)), dtype=np.float32)
        chunk = np.empty((min(self.windows_per_call(), len(scores)), *self.model_input_shape()), np.float32)
        filled = done = 0
        for blocks in self.file_inputs(batch):
            for block in blocks:
                taken = 0
                while taken < len(block):
                    n = min(len(block) - taken, len(chunk) - filled)
                    chunk[filled:filled + n] = block[taken:taken + n]
                    filled, taken = filled + n, taken + n
                    if filled == len(chunk):
                        scores[done:done + filled] = self.score_windows(model, chunk[:filled])
                        done, filled = done + filled, 0
        if filled:
            scores[done:done + filled] = self.score_windows(model, chunk[:filled])
        if done + filled != len(scores):
            raise RuntimeError(f'scored {done + filled} windows for {len(scores)} expected')
        offsets = np.cumsum([0] + counts)
        return [FileScores(example=None, inference=scores[offsets[i]:offsets[i + 1]],
                           model_id=metadata.model_version, labels=metadata.labels) for i in range(len(batch))]

    @property
    def keeps_model_loaded(self) -> bool:
        """Whether ``load_model`` returns a model kept for the life of the process (``InWorkerHandler``)."""
        return False

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        # The default pickles the whole batch just to measure it. ``nbytes``: what a file's samples hold (16-bit
        # PCM is read as float32 a window at a time, never whole: audio/pcm.py).
        return int(sum(samples.nbytes if hasattr(samples, 'nbytes') else np.asarray(samples).nbytes
                       for samples in batch))

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE

    def batch_elements_kwargs(self) -> dict[str, Any]:
        return dict(self._batching)


# Models that in-worker handlers keep loaded (``keep_model_loaded``), by handler class and model directory: one
# per process, found by every thread of it (the local batch runner runs its workers as threads).
_RESIDENT: dict[tuple[str, str], Any] = {}
_RESIDENT_LOCK = threading.Lock()


class InWorkerHandler(WindowedClassifierHandler):
    """A model served inside the worker: model updates, model copies, and an optional process-wide model.

    Subclasses say how to load their runtime's model (``load_runtime_model``) and which models it can serve
    (``serving_problems``).
    """

    def __init__(self, model_uri: str, *, model_copies: int = 1, share_model_across_processes: bool = False,
                 keep_model_loaded: bool = False, scoring_threads: Optional[int] = None, **kwargs):
        """``keep_model_loaded``: the model is loaded once per process and kept for later pipeline runs in it
        (watch mode runs one batch pipeline per listing; loading the SavedModel takes ~1.4 s on 2 busy cores).
        ``scoring_threads``: how many threads of a worker process score windows at once, for the runtimes that
        pool them (LiteRT: ``model.litert.pool_size``; 0: every core of the process); None: each calling thread
        scores its own windows."""
        super().__init__(model_uri, **kwargs)
        self._scoring_threads = scoring_threads
        self._share = share_model_across_processes
        self._model_copies = model_copies
        self._keep_loaded = keep_model_loaded
        self._rejected_updates: set[str] = set()

    @abc.abstractmethod
    def load_runtime_model(self) -> Any:
        """Loads the model at ``self._model_uri`` for this runtime (in the worker)."""

    def serving_problems(self, metadata: ModelMetadata) -> list[str]:
        """Why this runtime cannot serve a model with ``metadata`` (none: it can)."""
        return []

    def load_model(self) -> Any:
        if not self._keep_loaded:
            return self.load_runtime_model()
        key = (type(self).__qualname__, self._model_uri)
        with _RESIDENT_LOCK:
            if key not in _RESIDENT:
                _RESIDENT[key] = self.load_runtime_model()
            return _RESIDENT[key]

    @property
    def keeps_model_loaded(self) -> bool:
        return self._keep_loaded

    def scoring_pool(self) -> Optional[int]:
        """The size of the pool of scoring threads in this worker process (None: no pool)."""
        if self._scoring_threads is None:
            return None
        return pool_size(self._scoring_threads)

    def update_model_path(self, model_path: Optional[str] = None):
        """Called by RunInference's model-update side input with a watched path inside a model dir.

        An update that breaks the serving contract (labels, rate, window, hop), or that this handler's runtime
        cannot serve, is rejected: logged, counted, and the running model keeps serving. The runtime is chosen
        once, at construction. RunInference calls this twice per update.
        """
        if not model_path:
            return
        model_dir = model_dir_of(model_path)
        if model_dir == self._model_uri.rstrip('/') or model_dir in self._rejected_updates:
            return
        try:
            metadata = load_metadata(model_dir)
            problems = incompatibilities(self._metadata, metadata) + self.serving_problems(metadata)
        except Exception as e:   # an unreadable or invalid metadata.json: the same answer, never a crash
            problems = [f'{type(e).__name__}: {e}']
        if problems:
            self._rejected_updates.add(model_dir)
            Metrics.counter(METRICS_NAMESPACE, 'model_updates_rejected').inc()
            _LOGGER.error('Model update %s rejected, still serving %s from %s: %s', model_dir,
                          self._metadata.model_version, self._model_uri, '; '.join(problems))
            return
        _LOGGER.info('Model update: %s (%s) replaces %s (%s)', metadata.model_version, model_dir,
                     self._metadata.model_version, self._model_uri)
        Metrics.counter(METRICS_NAMESPACE, 'model_updates_applied').inc()
        self._model_uri, self._metadata = model_dir, metadata

    def share_model_across_processes(self) -> bool:
        return self._share

    def model_copies(self) -> int:
        return self._model_copies or 1  # Beam's base class types the attribute Optional


class SavedModelHandler(InWorkerHandler):
    """Scores waveform windows in the worker with the exported TensorFlow SavedModel."""

    runtime = 'savedmodel'

    def __init__(self, model_uri: str, **kwargs):
        super().__init__(model_uri, **kwargs)
        self._max_windows_per_call = min(self._max_windows_per_call, TF_WINDOWS_PER_CALL)

    def load_runtime_model(self):
        tf = import_tensorflow_for_serving()  # in the worker only

        return tf.saved_model.load(local_model_dir(self._model_uri)).signatures[SIGNATURE]

    def score_windows(self, model, windows: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        return model(**{INPUT_NAME: tf.constant(windows)})[OUTPUT_NAME].numpy()
