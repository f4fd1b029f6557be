"""Inference stage: batched RunInference over each file's windows, aggregated per file.

Aggregation turns a file's ``[windows, labels]`` probabilities into its label and, unless events are off,
its events (``audio.events``), both from the same labels in one pass over the same array.

Single-label models (softmax): the file's label is the arg-max of its windows' mean probabilities, and
``scores`` holds every label's mean. Multi-label models (one sigmoid per label, e.g. BirdNET's 6,522 species):
a species heard in one window of an hour is there, so a label's file score is its highest window score; the
file's label is the label with the highest, and ``scores`` keeps the ``TOP_SCORES`` highest only.
A species list (``--species_list``) restricts all of it to the labels listed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

import apache_beam as beam
from apache_beam import typehints
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.utils import WatchFilePattern

from audio.events import EventSettings, Timing, allowed_mask, detect_events
from audio.records import Classification, FailedAudio, ProcessedAudio
from model.handlers import FileScores, WindowedClassifierHandler
from model.metadata import BACKGROUND_LABEL, ModelMetadata
from results.thresholds import parse_label_thresholds
from transforms import METRICS_NAMESPACE
from transforms.coders import Samples
from transforms.failures import FAILED, StageOutputs


# Multi-label models: how many labels a result row's ``scores`` keeps (the file's most confident ones).
TOP_SCORES = 10


@dataclass(frozen=True)
class LabelRules:
    """How a file's window scores become its label and scores (see the module doc)."""
    multi_label: bool = False
    allowed_labels: Optional[frozenset[str]] = None   # a species list; None: every label

    @classmethod
    def of(cls, metadata: ModelMetadata, allowed_labels: Optional[frozenset[str]] = None) -> 'LabelRules':
        return cls(multi_label=metadata.multi_label, allowed_labels=allowed_labels)


class TooShort(ValueError):
    """A file shorter than the model's shortest window (``ModelMetadata.min_window_samples``): no window."""


def aggregate(probabilities: np.ndarray, labels: tuple[str, ...], model_version: str,
              events: Optional[EventSettings] = None, timing: Optional[Timing] = None,
              rules: LabelRules = LabelRules()) -> Classification:
    """A file's label and scores (see the module doc); its events come from the same windows.

    ``events`` None: events are not computed (``Classification.events`` is None, the row's event_count NULL).
    """
    probabilities = np.asarray(probabilities)
    if not len(probabilities):
        raise TooShort('the file is shorter than the model\'s shortest window: nothing to classify')
    per_label = (probabilities.max(axis=0) if rules.multi_label
                 else probabilities.mean(axis=0, dtype=np.float64)).astype(np.float64)
    listed = None
    if rules.allowed_labels is not None:
        listed = allowed_mask(labels, EventSettings(allowed_labels=rules.allowed_labels))
        per_label = np.where(listed, per_label, -np.inf)
    best = int(np.argmax(per_label))
    if rules.multi_label:
        order = np.argsort(-per_label, kind='stable')[:TOP_SCORES]
        kept = [int(i) for i in order if np.isfinite(per_label[i])]
    else:
        kept = [i for i in range(len(labels)) if np.isfinite(per_label[i])]
    found = None
    if events is not None:
        assert timing is not None, 'events need the windows timing (audio.events.window_timing)'
        found = tuple(detect_events(probabilities, labels, timing, events))
    return Classification(label=labels[best], confidence=float(per_label[best]),
                          scores=tuple((labels[i], float(per_label[i])) for i in kept),
                          model_version=model_version, windows=len(probabilities), events=found)


def event_settings(min_confidence: float, metadata: Optional[ModelMetadata] = None,
                   merge_consecutive: Optional[int] = None, allowed_labels: Optional[frozenset[str]] = None,
                   label_min_confidence: Optional[Mapping[str, float]] = None) -> EventSettings:
    """Events as the pipeline finds them: the model contract's background label is never an event; labels in
    ``label_min_confidence`` (``--label_thresholds``) have their own minimum; a multi-label model detects every
    label at least its minimum; ``merge_consecutive`` None takes the model's default
    (``ModelMetadata.merge_consecutive``)."""
    if merge_consecutive is None:
        merge_consecutive = metadata.merge_consecutive if metadata else 0
    return EventSettings(min_confidence=min_confidence, background_label=BACKGROUND_LABEL,
                         label_min_confidence=tuple(sorted((label_min_confidence or {}).items())),
                         multi_label=bool(metadata and metadata.multi_label), merge_consecutive=merge_consecutive,
                         allowed_labels=allowed_labels)


def read_label_thresholds(path: str) -> dict[str, float]:
    """{label: minimum confidence} from a ``--label_thresholds`` file, local or gs:// (results/thresholds.py)."""
    with FileSystems.open(path, compression_type='uncompressed') as f:
        return parse_label_thresholds(f.read().decode('utf-8'))


def window_timing(metadata: ModelMetadata, duration_seconds: float) -> Timing:
    return Timing(hop_seconds=metadata.hop_samples / metadata.sample_rate_hz,
                  window_seconds=metadata.window_samples / metadata.sample_rate_hz,
                  duration_seconds=duration_seconds)


class _Aggregate(beam.DoFn):
    """Names the scores with the labels of the model that produced them (FileScores.labels): after a model
    update they are the new model's, never a copy taken when the graph was built."""

    def __init__(self, metadata: Optional[ModelMetadata] = None, events: Optional[EventSettings] = None,
                 rules: LabelRules = LabelRules()):
        # Only the windowing (rate, window, hop) is read from here: a model update may not change it
        # (``model.handlers`` rejects one that does), while labels may change and come with the scores.
        self._metadata = metadata
        self._events = events
        self._rules = rules
        self._classified = Metrics.counter(METRICS_NAMESPACE, 'files_classified')
        self._windows = Metrics.distribution(METRICS_NAMESPACE, 'windows_per_file')
        self._event_count = Metrics.distribution(METRICS_NAMESPACE, 'events_per_file')

    def process(self, keyed: tuple[ProcessedAudio, FileScores]):
        item, result = keyed
        if result.error is not None:   # the model refused this file alone (model/vertex_handler.py): its fault
            yield beam.pvalue.TaggedOutput(FAILED, FailedAudio(item.source, 'inference', 'RefusedByModel',
                                                               result.error))
            return
        try:
            # Events name windows with the same labels as the file's label: the producing model's.
            timing = None
            if self._events:
                assert self._metadata is not None, 'events need the model metadata (its windowing)'
                timing = window_timing(self._metadata, item.info.duration_seconds)
            classification = aggregate(result.inference, result.labels, str(result.model_id), self._events, timing,
                                       self._rules)
        except Exception as e:
            yield beam.pvalue.TaggedOutput(FAILED, FailedAudio(item.source, 'inference', type(e).__name__, str(e)))
            return
        self._classified.inc()
        self._windows.update(classification.windows)
        if classification.events is not None:
            self._event_count.update(len(classification.events))
        yield item, classification


def _describe(error) -> tuple[str, str]:
    """(type name, message) of an exception, or of the (type, repr, traceback lines) Beam's DLQ carries."""
    if isinstance(error, tuple) and error and isinstance(error[0], type):
        last_line = (error[2][-1] if len(error) > 2 and error[2] else str(error[1])).strip()
        prefix = f'{error[0].__name__}: '
        return error[0].__name__, last_line[len(prefix):] if last_line.startswith(prefix) else last_line
    return type(error).__name__, str(error)


def _failed_batch(failure) -> list[FailedAudio]:
    """A batch RunInference gave up on (after the handler's own retries, e.g. Vertex AI throttling): the
    moment's fault as far as anyone can tell (transforms/failures.py), so retryable: a replay retries it."""
    batch, error = failure
    error_type, message = _describe(error)
    return [FailedAudio(item.source, 'inference', error_type, message, retryable=True) for item, _ in batch]


class ClassifyAudio(beam.PTransform):
    """DecodedAudio (with spectrogram) -> (ProcessedAudio, Classification)."""

    def __init__(self, handler: WindowedClassifierHandler, watch_pattern: Optional[str] = None,
                 watch_interval_seconds: float = 60.0, events: Optional[EventSettings] = None,
                 allowed_labels: Optional[frozenset[str]] = None):
        """``events``: how to find each file's events (``event_settings``), or None not to.
        ``allowed_labels``: a species list (None: every label)."""
        super().__init__()
        self._handler = handler
        self._events = events
        self._rules = LabelRules.of(handler.metadata, allowed_labels)
        self._watch_pattern = watch_pattern
        self._watch_interval = watch_interval_seconds

    def expand(self, decoded):
        model_updates = {}   # RunInference's side input of model updates, when a pattern is watched
        if self._watch_pattern:
            model_updates['model_metadata_pcoll'] = decoded.pipeline | 'WatchModel' >> WatchFilePattern(
                file_pattern=self._watch_pattern, interval=self._watch_interval)
        keyed = decoded | 'KeyByFile' >> beam.Map(
            lambda d: (ProcessedAudio.of(d), Samples.of(d.samples))).with_output_types(tuple[ProcessedAudio, Samples])
        predictions, dead_letters = (
            keyed | 'RunInference' >> RunInference(KeyedModelHandler(self._handler),
                                                   **model_updates).with_exception_handling())
        # RunInference declares no output type, so Beam would size a sample of its outputs for its byte counters
        # by pickling them: a copy of a file's scores (31 MB for an hour of BirdNET) at the memory peak. Typed,
        # they take FileScoresCoder (transforms/coders.py), which reads the size off the array.
        predictions.element_type = typehints.Tuple[ProcessedAudio, FileScores]
        aggregate_files = _Aggregate(self._handler.metadata.windowing_only(), self._events, self._rules)
        out = predictions | 'Aggregate' >> beam.ParDo(aggregate_files).with_outputs(FAILED, main='ok')
        failed_batches = dead_letters.failed_inferences | 'FailedBatches' >> beam.FlatMap(_failed_batch)
        failed = (out[FAILED], failed_batches) | 'AllFailures' >> beam.Flatten()
        return StageOutputs(out.ok, failed)
