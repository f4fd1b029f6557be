"""Serving a whole-model TFLite file on raw waveform windows (``runtime: litert_waveform``, e.g. BirdNET).

The published model does its own front end, so a window goes in as the samples themselves: the handler only
cuts the file into windows (``WindowedClassifierHandler``, per ``ModelMetadata.window_count``), runs them
through LiteRT (one interpreter per thread, XNNPACK kernels, the GIL released during ``invoke``) and turns the
outputs into probabilities with the metadata's ``activation`` (BirdNET: its sigmoid over logits).
"""
from __future__ import annotations

import numpy as np

from model import activation
from model.handlers import WindowedClassifierHandler
from model.metadata import LITERT_WAVEFORM_RUNTIME, ModelMetadata, join
from model.serving import LiteRTModel, one_blas_thread


def model_file(metadata: ModelMetadata) -> str:
    entry = metadata.serving.get(LITERT_WAVEFORM_RUNTIME) or {}
    if not entry.get('file'):
        raise ValueError(f'model {metadata.model_version!r}: runtime {LITERT_WAVEFORM_RUNTIME} needs '
                         f'serving.{LITERT_WAVEFORM_RUNTIME}.file in its metadata')
    return entry['file']


class WaveformLiteRTHandler(WindowedClassifierHandler):
    """``[n, window_samples]`` waveform windows -> LiteRT -> ``activation`` -> ``[n, labels]`` probabilities."""

    runtime = LITERT_WAVEFORM_RUNTIME

    def __init__(self, model_uri: str, *, model_copies: int = 1, share_model_across_processes: bool = False,
                 **kwargs):
        super().__init__(model_uri, **kwargs)
        model_file(self.metadata)              # a broken pack fails at construction, not in the workers
        activation.check(self.metadata.activation)
        self._share = share_model_across_processes
        self._model_copies = model_copies

    def load_model(self) -> LiteRTModel:
        from apache_beam.io.filesystems import FileSystems

        one_blas_thread()
        with FileSystems.open(join(self._model_uri, model_file(self.metadata))) as f:
            return LiteRTModel(f.read())

    def score_windows(self, model: LiteRTModel, windows: np.ndarray) -> np.ndarray:
        return activation.apply(model(windows), self.metadata.activation)

    def share_model_across_processes(self) -> bool:
        return self._share

    def model_copies(self) -> int:
        return self._model_copies or 1
