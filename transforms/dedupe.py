"""Each (object, generation) is processed once.

* Streaming: Pub/Sub and Cloud Storage notifications are at-least-once, so a
  stateful per-key dedupe drops a (uri, generation) seen within the TTL.
* Batch replay: keys that already have a result or an error row are skipped
  (read once, at the start, as a side input), so replaying the same backlog
  twice adds no rows; ``--reprocess`` turns that off.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional

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

    def __init__(self):
        self._skipped = Metrics.counter(METRICS_NAMESPACE, 'files_skipped_already_processed')

    def process(self, obj, known):
        if obj.key in known:
            self._skipped.inc()
            return
        yield obj


class SkipAlreadyProcessed(beam.PTransform):
    """Batch: drop objects whose (uri, generation) already has a result or an error row.

    ``read_keys`` runs once on a worker at the start and returns (audio_file, generation) pairs.
    """

    def __init__(self, read_keys: Optional[Callable[[], Iterable[tuple[str, str]]]]):
        super().__init__()
        self._read_keys = read_keys

    def expand(self, objects):
        if self._read_keys is None:
            return objects
        read_keys = self._read_keys
        known = (objects.pipeline
                 | 'Start' >> beam.Create([None])
                 | 'ReadExistingKeys' >> beam.FlatMap(lambda _: ((object_key(f, g), True) for f, g in read_keys())))
        return objects | 'Skip' >> beam.ParDo(_SkipKnown(), known=beam.pvalue.AsDict(known))
