"""Serving a whole-model TFLite file on raw waveform windows (``runtime: litert_waveform``, e.g. BirdNET).

The published model does its own front end, so a window goes in as the samples themselves: the handler only
cuts the file into windows (``WindowedClassifierHandler``, per ``ModelMetadata.window_count``), runs them
through LiteRT (``model.litert.LiteRTModel``: one interpreter per thread, XNNPACK kernels, the GIL released
during ``invoke``) and turns the outputs into probabilities with the metadata's ``activation`` (BirdNET: its
sigmoid over logits). ``model.serving.local_handler`` chooses it for such a model.
"""
from __future__ import annotations

import numpy as np

from model import activation
from model.handlers import InWorkerHandler
from model.metadata import LITERT_WAVEFORM_RUNTIME, ModelMetadata, join
from model.litert import LiteRTModel, one_blas_thread


# Waveform windows gathered per call: a call's input buffer is this many windows (BirdNET: 576 KB each, so 9 MB
# per thread); LiteRT runs them WAVEFORM_WINDOWS_PER_INVOKE at a time either way, so more would only cost memory.
WAVEFORM_WINDOWS_PER_CALL = 16
# Windows per LiteRT invoke: one. A waveform model's activations are large: BirdNET's interpreter takes 79 MiB
# for one window and 145 MiB for 4 (133 for 2), against a 1 GiB budget for a 1-hour 48 kHz file whose samples
# alone are 659 MiB. The price is ~1.5 ms of CPU on a 34-ms window (~4%); the scores are the same bit for bit.
# docs/benchmarks.md, BirdNET.
WAVEFORM_WINDOWS_PER_INVOKE = 1


def model_file(metadata: ModelMetadata) -> str:
    return (metadata.serving.get(LITERT_WAVEFORM_RUNTIME) or {}).get('file', '')


class WaveformLiteRTHandler(InWorkerHandler):
    """``[n, window_samples]`` waveform windows -> LiteRT -> ``activation`` -> ``[n, labels]`` probabilities."""

    runtime = LITERT_WAVEFORM_RUNTIME

    def __init__(self, model_uri: str, **kwargs):
        super().__init__(model_uri, **kwargs)
        problems = self.serving_problems(self.metadata)
        if problems:   # a broken pack fails here, at construction, not in the workers
            raise ValueError(problems[0])

    def serving_problems(self, metadata: ModelMetadata) -> list[str]:
        problems = []
        if metadata.runtime != LITERT_WAVEFORM_RUNTIME or not model_file(metadata):
            problems.append(f'model {metadata.model_version!r} is not a whole-model TFLite pack (runtime '
                            f'{LITERT_WAVEFORM_RUNTIME} with serving.{LITERT_WAVEFORM_RUNTIME}.file)')
        try:
            activation.check(metadata.activation)
        except ValueError as e:
            problems.append(str(e))
        return problems

    def load_runtime_model(self) -> LiteRTModel:
        from apache_beam.io.filesystems import FileSystems

        one_blas_thread()
        with FileSystems.open(join(self._model_uri, model_file(self.metadata))) as f:
            return LiteRTModel(f.read(), windows_per_invoke=WAVEFORM_WINDOWS_PER_INVOKE,
                               concurrency=self.scoring_pool())

    def windows_per_call(self) -> int:
        return min(self._max_windows_per_call, WAVEFORM_WINDOWS_PER_CALL)

    def score_windows(self, model: LiteRTModel, windows: np.ndarray) -> np.ndarray:
        return activation.apply(model(windows), self.metadata.activation)
