"""Inference stage: batched RunInference over each file's windows, aggregated per file."""
from __future__ import annotations

from typing import Optional

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.ml.inference.utils import WatchFilePattern

from audio.records import Classification, FailedAudio, ProcessedAudio
from model.handlers import FileScores, WindowedClassifierHandler
from transforms import METRICS_NAMESPACE
from transforms.coders import Samples
from transforms.sources import FAILED, StageOutputs


def aggregate(probabilities: np.ndarray, labels: tuple[str, ...], model_version: str) -> Classification:
    """A file's label is the arg-max of its windows' mean probabilities."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    mean = probabilities.mean(axis=0)
    best = int(np.argmax(mean))
    return Classification(label=labels[best], confidence=float(mean[best]),
                          scores=tuple((label, float(p)) for label, p in zip(labels, mean)),
                          model_version=model_version, windows=len(probabilities))


class _Aggregate(beam.DoFn):
    """Names the scores with the labels of the model that produced them (FileScores.labels): after a model
    update they are the new model's, never a copy taken when the graph was built."""

    def __init__(self):
        self._classified = Metrics.counter(METRICS_NAMESPACE, 'files_classified')
        self._windows = Metrics.distribution(METRICS_NAMESPACE, 'windows_per_file')

    def process(self, keyed: tuple[ProcessedAudio, FileScores]):
        item, result = keyed
        try:
            classification = aggregate(result.inference, result.labels, str(result.model_id))
        except Exception as e:
            yield beam.pvalue.TaggedOutput(FAILED, FailedAudio(item.source, 'inference', type(e).__name__, str(e)))
            return
        self._classified.inc()
        self._windows.update(classification.windows)
        yield item, classification


def _describe(error) -> tuple[str, str]:
    """(type name, message) of an exception, or of the (type, repr, traceback lines) Beam's DLQ carries."""
    if isinstance(error, tuple) and error and isinstance(error[0], type):
        last_line = (error[2][-1] if len(error) > 2 and error[2] else str(error[1])).strip()
        prefix = f'{error[0].__name__}: '
        return error[0].__name__, last_line[len(prefix):] if last_line.startswith(prefix) else last_line
    return type(error).__name__, str(error)


def _failed_batch(failure) -> list[FailedAudio]:
    batch, error = failure
    error_type, message = _describe(error)
    return [FailedAudio(item.source, 'inference', error_type, message) for item, _ in batch]


class ClassifyAudio(beam.PTransform):
    """DecodedAudio (with spectrogram) -> (ProcessedAudio, Classification)."""

    def __init__(self, handler: WindowedClassifierHandler, watch_pattern: Optional[str] = None,
                 watch_interval_seconds: float = 60.0):
        super().__init__()
        self._handler = handler
        self._watch_pattern = watch_pattern
        self._watch_interval = watch_interval_seconds

    def expand(self, decoded):
        model_updates = None
        if self._watch_pattern:
            model_updates = decoded.pipeline | 'WatchModel' >> WatchFilePattern(
                file_pattern=self._watch_pattern, interval=self._watch_interval)
        keyed = decoded | 'KeyByFile' >> beam.Map(
            lambda d: (ProcessedAudio.of(d), Samples.of(d.samples))).with_output_types(tuple[ProcessedAudio, Samples])
        predictions, dead_letters = (
            keyed | 'RunInference' >> RunInference(KeyedModelHandler(self._handler),
                                                   model_metadata_pcoll=model_updates).with_exception_handling())
        out = predictions | 'Aggregate' >> beam.ParDo(_Aggregate()).with_outputs(
            FAILED, main='ok')
        failed_batches = dead_letters.failed_inferences | 'FailedBatches' >> beam.FlatMap(_failed_batch)
        failed = (out[FAILED], failed_batches) | 'AllFailures' >> beam.Flatten()
        return StageOutputs(out.ok, failed)
