"""Serving the classifier in the worker: the fastest runtime the model directory offers.

An exported model directory always holds the SavedModel (waveform windows in, probabilities out: the
artifact for Vertex AI and ``model.evaluate``). ``model.export`` also writes ``classifier.tflite``, the
same trained network after its feature front end (log-mel patch in, probabilities out), and lists it in
the metadata's ``serving`` section once it has checked it against the SavedModel. Served that way:

- the log-mel front end runs here in numpy/scipy, **once per file** rather than once per overlapping
  window (windows are ``hop_samples`` apart and frames ``frame_step`` apart, so window ``i``'s frames are
  the file's frames ``i * hop / frame_step`` onwards: the same numbers, computed once);
- the CNN runs in LiteRT with its XNNPACK CPU kernels, one interpreter per thread;
- the worker never imports TensorFlow (less memory, faster start).

``LiteRTHandler`` serves it that way; ``local_handler`` picks it when the metadata lists it and
``ai_edge_litert`` imports, else ``model.handlers.SavedModelHandler``; ``runtime='savedmodel'`` or
``'litert'`` forces one. The choice is made once: a model update the chosen runtime cannot serve is rejected.
The scores agree within ``PARITY_TOLERANCE`` (tests/model/test_serving.py checks it on the same windows).
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np
import scipy.fft
import scipy.sparse

from audio.framing import frames as frame_view
from model.features import FeatureConfig, mel_weight_matrix
from model.handlers import InWorkerHandler, SavedModelHandler, iter_windows
from model.metadata import LITERT_WAVEFORM_RUNTIME, ModelMetadata, join, load_metadata
from model.litert import LiteRTModel, litert_available, one_blas_thread
from model.litert_waveform import WaveformLiteRTHandler

LITERT = 'litert'
SAVEDMODEL = 'savedmodel'
AUTO = 'auto'
RUNTIMES = (AUTO, LITERT, SAVEDMODEL)
LITERT_FILE = 'classifier.tflite'
LITERT_INPUT = 'log_mel'
# Largest difference allowed between a LiteRT probability and the SavedModel's for the same window (absolute).
# Measured: ~1e-6 (float32 rounding: scipy's FFT against TensorFlow's, XNNPACK's conv against oneDNN's).
PARITY_TOLERANCE = 1e-4
# Log-mel patches per LiteRT call: the cost per window stops falling well before this, and a call's buffers stay
# a few MB (a one-second window's patch is 25 KB).
LITERT_WINDOWS_PER_CALL = 64


class LogMelFrontEnd:
    """``model.features.log_mel`` in numpy: samples -> ``[frames, n_mels]`` float32 natural-log mel power.

    Same definition (uncentred frames from sample 0, periodic Hann, ``fft_length`` FFT of the zero-padded
    frame, HTK mel triangles, ``log(mel + log_offset)``), in float32 with scipy's FFT.
    """

    def __init__(self, config: FeatureConfig):
        self.config = config
        n = np.arange(config.frame_length)
        self._window = (0.5 - 0.5 * np.cos(2 * np.pi * n / config.frame_length)).astype(np.float32)
        # Each FFT bin feeds at most two mel triangles: as a sparse product the mel step costs ~500 multiply-adds
        # a frame instead of the dense matrix's ~16,000 (measured: 0.17 -> 0.08 ms CPU for a 5-s file).
        self._mel_t = scipy.sparse.csr_array(mel_weight_matrix(config).T)

    def frame_count(self, num_samples: int) -> int:
        return max(0, 1 + (num_samples - self.config.frame_length) // self.config.frame_step)

    # Frames per FFT call: the call's buffers (~1.5 MB) stay in cache and are reused, instead of fresh
    # multi-MB temporaries (page faults) for a whole block of windows.
    FRAMES_PER_CHUNK = 512

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """``[..., samples]`` -> ``[..., frames, n_mels]``: one signal, or a stack of equal-length ones at once."""
        c = self.config
        frames = frame_view(np.ascontiguousarray(samples, dtype=np.float32), c.frame_length, c.frame_step)
        lead = frames.shape[:-1]
        frames = frames.reshape(-1, c.frame_length)   # a copy only for a stack of signals
        out = np.empty((len(frames), c.n_mels), np.float32)
        chunk = min(self.FRAMES_PER_CHUNK, len(frames))
        padded = np.zeros((chunk, c.fft_length), np.float32)   # the FFT's zero padding, written once
        power = np.empty((chunk, c.fft_length // 2 + 1), np.float32)
        for start in range(0, len(frames), chunk):
            n = min(chunk, len(frames) - start)
            np.multiply(frames[start:start + n], self._window, out=padded[:n, :c.frame_length])
            spectrum = scipy.fft.rfft(padded[:n], axis=-1)
            np.square(spectrum.real, out=power[:n])
            power[:n] += np.square(spectrum.imag)
            out[start:start + n] = (self._mel_t @ power[:n].T).T
        out += np.float32(c.log_offset)
        return np.log(out, out=out).reshape(*lead, c.n_mels)

    def of_zero_padded(self, signals: list[np.ndarray], length: int) -> np.ndarray:
        """``[len(signals), frame_count(length), n_mels]``: each signal zero-padded to ``length`` samples, then
        ``self(...)``, the same numbers, computed only for frames that start inside the longest signal.

        A frame of zeros gives zero power and so exactly ``log(log_offset)``; a 0.45-s digit padded to a
        one-second window is more than half such frames.
        """
        c = self.config
        frames = self.frame_count(length)
        live = min(frames, -(-max(len(x) for x in signals) // c.frame_step))   # frames that start in a signal
        live_samples = (live - 1) * c.frame_step + c.frame_length if live else 0   # what those frames read
        stack = np.zeros((len(signals), live_samples), np.float32)
        for row, samples in enumerate(signals):
            stack[row, :min(len(samples), live_samples)] = samples[:live_samples]
        out = np.empty((len(signals), frames, c.n_mels), np.float32)
        if live:
            out[:, :live] = self(stack)
        out[:, live:] = np.log(np.float32(0) + np.float32(c.log_offset))
        return out


def window_patches(samples: np.ndarray, metadata: ModelMetadata, front_end: LogMelFrontEnd,
                   windows_per_block: int = LITERT_WINDOWS_PER_CALL) -> Iterator[np.ndarray]:
    """A file's log-mel patches, ``[k, frames, n_mels]`` blocks in window order; what the SavedModel computes
    from ``iter_windows`` (the last window zero-padded), with each frame computed once when the hop is a whole
    number of frames. A block covers ``windows_per_block`` windows, so memory stays bounded for long files.
    """
    w, hop, step = metadata.window_samples, metadata.hop_samples, front_end.config.frame_step
    frames_per_window = front_end.frame_count(w)
    n = metadata.window_count(len(samples))
    if hop % step:  # frames of neighbouring windows do not line up: one window at a time
        for window in iter_windows(samples, metadata):
            yield front_end(window)[np.newaxis]
        return
    hop_frames = hop // step
    for first in range(0, n, windows_per_block):
        last = min(n, first + windows_per_block)
        start, stop = first * hop, (last - 1) * hop + w
        segment = samples[start:stop]
        if len(segment) < stop - start:
            segment = np.pad(segment, (0, stop - start - len(segment)))
        log_mel = front_end(segment)
        # [windows, frames, n_mels] views of the file's frames
        yield frame_view(log_mel.T, frames_per_window, hop_frames).transpose(1, 2, 0)


def no_litert_file(metadata: ModelMetadata) -> str:
    return (f'model {metadata.model_version!r} has no LiteRT file (its metadata lists '
            f'{sorted(metadata.serving) or "none"}); re-export it, or use the SavedModel')


def choose_runtime(metadata: ModelMetadata, requested: str = AUTO) -> str:
    """The runtime to serve ``metadata``'s model with: LiteRT when listed and installed, else the SavedModel."""
    if requested not in RUNTIMES:
        raise ValueError(f'unknown inference runtime {requested!r}; one of {", ".join(RUNTIMES)}')
    listed = LITERT in metadata.serving
    if requested == LITERT:
        if not listed:
            raise ValueError(no_litert_file(metadata))
        if not litert_available():
            raise ImportError('the LiteRT runtime is not installed: pip install ai-edge-litert')
        return LITERT
    if requested == AUTO and listed and litert_available():
        return LITERT
    return SAVEDMODEL


# Short files per vectorised front-end call: bounds its working memory (~100 KB a file).
FRONT_END_FILES_PER_CALL = 64


class LiteRTHandler(InWorkerHandler):
    """Scores a file's log-mel patches (``LogMelFrontEnd``, once per file) with the model's LiteRT file."""

    runtime = LITERT

    def __init__(self, model_uri: str, **kwargs):
        super().__init__(model_uri, **kwargs)
        problems = self.serving_problems(self.metadata)
        if problems:
            raise ValueError(problems[0])
        self._front_end = LogMelFrontEnd(FeatureConfig(**self.metadata.features))

    def serving_problems(self, metadata: ModelMetadata) -> list[str]:
        return [] if LITERT in metadata.serving else [no_litert_file(metadata)]

    @property
    def front_end(self) -> LogMelFrontEnd:
        return self._front_end

    def load_runtime_model(self) -> LiteRTModel:
        # The model may have changed since construction (update_model_path), and with it the front end.
        self._front_end = LogMelFrontEnd(FeatureConfig(**self.metadata.features))
        one_blas_thread()
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(join(self._model_uri, self.metadata.serving[LITERT]['file'])) as f:
            return LiteRTModel(f.read(), concurrency=self.scoring_pool())

    def model_input_shape(self) -> tuple[int, ...]:
        return (self._front_end.frame_count(self.metadata.window_samples), self._front_end.config.n_mels)

    def window_inputs(self, samples: np.ndarray) -> Iterator[np.ndarray]:
        return window_patches(samples, self.metadata, self._front_end)

    def file_inputs(self, batch: Sequence[np.ndarray]) -> Iterator[Iterable[np.ndarray]]:
        """As the base class, except that the batch's one-window files (short clips) get their front end in a
        few vectorised calls instead of one small call each (the calls' overhead was a third of the cost per
        window of a short clip)."""
        w = self.metadata.window_samples
        # By length, so that each group's padding (frames computed for nothing) is short (of_zero_padded).
        short = sorted((i for i, samples in enumerate(batch) if len(samples) <= w), key=lambda i: len(batch[i]))
        ready: dict[int, np.ndarray] = {}
        for start in range(0, len(short) if len(short) > 1 else 0, FRONT_END_FILES_PER_CALL):
            group = short[start:start + FRONT_END_FILES_PER_CALL]
            patches = self._front_end.of_zero_padded([batch[i] for i in group], w)
            ready.update((i, patches[row:row + 1]) for row, i in enumerate(group))
        for i, samples in enumerate(batch):
            yield (ready[i],) if i in ready else self.window_inputs(samples)

    def windows_per_call(self) -> int:
        return min(self._max_windows_per_call, LITERT_WINDOWS_PER_CALL)

    def score_windows(self, model: LiteRTModel, windows: np.ndarray) -> np.ndarray:
        return model(windows)


def local_handler(model_uri: str, *, runtime: str = AUTO, metadata: Optional[ModelMetadata] = None,
                  **kwargs) -> InWorkerHandler:
    """The in-worker handler for ``model_uri``: a whole-model TFLite pack's (``model.litert_waveform``) when the
    metadata's runtime says so; else LiteRT's when the metadata lists it and it is installed (or ``runtime`` asks
    for it), else the SavedModel's. ``kwargs``: ``InWorkerHandler``'s."""
    metadata = metadata or load_metadata(model_uri)
    if metadata.runtime == LITERT_WAVEFORM_RUNTIME:
        if runtime not in (AUTO, LITERT):
            raise ValueError(f'model {metadata.model_version!r} is a whole-model TFLite file: it runs on LiteRT only')
        return WaveformLiteRTHandler(model_uri, metadata=metadata, **kwargs)
    handler: type[InWorkerHandler] = LiteRTHandler if choose_runtime(metadata, runtime) == LITERT else SavedModelHandler
    return handler(model_uri, metadata=metadata, **kwargs)


def metadata_entry(parity_max_abs_diff: float, frames: int, n_mels: int) -> dict[str, Any]:
    """What ``model.export`` writes under ``serving.litert`` in the metadata."""
    return {'file': LITERT_FILE, 'input': LITERT_INPUT, 'input_shape': [frames, n_mels],
            'front_end': 'model.serving.LogMelFrontEnd (numpy/scipy, once per file)',
            'parity_max_abs_diff': parity_max_abs_diff, 'parity_tolerance': PARITY_TOLERANCE}


def litert_probabilities(model_content: bytes, windows: np.ndarray, metadata: ModelMetadata,
                         features: Optional[FeatureConfig] = None) -> np.ndarray:
    """Scores ``[n, window_samples]`` waveform windows through the numpy front end and LiteRT (export's check)."""
    front_end = LogMelFrontEnd(features or FeatureConfig(**metadata.features))
    patches = np.stack([front_end(window) for window in windows])
    return LiteRTModel(model_content)(patches)
