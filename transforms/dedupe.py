"""Each (object, generation) is processed once.

* Streaming: Pub/Sub and Cloud Storage notifications are at-least-once, so a
  stateful per-key dedupe drops a (uri, generation) seen within the TTL.
* Batch replay: keys that already have a result row or a permanent error row
  are skipped (read once, at the start, as a side input), so replaying the same
  backlog twice adds no rows; keys whose only rows are retryable errors are
  retried (``--retry_failed`` retries permanent errors too); ``--reprocess``
  turns skipping off.
"""
from __future__ import annotations

from typing import Callable, Mapping, Optional

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.deduplicate import DeduplicatePerKey
from apache_beam.utils.timestamp import Duration

from audio.records import AudioObject, object_key
from transforms import METRICS_NAMESPACE


class DropRepeatedNotifications(beam.PTransform):
    """Streaming: the first notification of each (uri, generation) within ``ttl_seconds`` passes."""

    def __init__(self, ttl_seconds: int):
        super().__init__()
        self._ttl = ttl_seconds

    def expand(self, objects):
        # The key is a str, declared so: Beam then encodes it with a deterministic coder, which a stateful
        # step's key needs (with no type hint it would be FastPrimitivesCoder, "may not be deterministic").
        return (objects
                | 'KeyByObject' >> beam.Map(lambda o: (o.key, o)).with_output_types(tuple[str, AudioObject])
                | 'FirstPerKey' >> DeduplicatePerKey(processing_time_duration=Duration(seconds=self._ttl))
                | 'DropKey' >> beam.Values())


class _SkipKnown(beam.DoFn):

    def __init__(self, done_states: frozenset[str]):
        self._done_states = done_states
        self._skipped = Metrics.counter(METRICS_NAMESPACE, 'files_skipped_already_processed')
        self._retried = Metrics.counter(METRICS_NAMESPACE, 'files_retried')

    def process(self, obj, known):
        state = known.get(obj.key)
        if state in self._done_states:
            self._skipped.inc()
            return
        if state is not None:  # it has only error rows that are to be retried
            self._retried.inc()
        yield obj


class SkipAlreadyProcessed(beam.PTransform):
    """Batch: drop objects whose (uri, generation) already has a row in one of ``done_states``.

    ``read_states`` runs once on a worker at the start and returns {(audio_file, generation): state}
    (``results.store.ResultStore.key_states``: RESULT, PERMANENT_ERROR or RETRYABLE_ERROR).
    """

    def __init__(self, read_states: Optional[Callable[[], Mapping[tuple[str, str], str]]],
                 done_states: frozenset[str]):
        super().__init__()
        self._read_states = read_states
        self._done_states = done_states

    def expand(self, objects):
        if self._read_states is None:
            return objects
        read_states = self._read_states
        known = (objects.pipeline
                 | 'Start' >> beam.Create([None])
                 | 'ReadExistingKeys' >> beam.FlatMap(
                     lambda _: ((object_key(f, g), state) for (f, g), state in read_states().items())))
        return objects | 'Skip' >> beam.ParDo(_SkipKnown(self._done_states), known=beam.pvalue.AsDict(known))
