"""Each (object, generation) is processed once.

* Streaming: Pub/Sub and Cloud Storage notifications are at-least-once, so a
  stateful per-key dedupe drops a (uri, generation) seen within the TTL.
* Batch replay: keys that already have a result row or a permanent error row
  are skipped (read once, at the start, as a side input), so replaying the same
  backlog twice adds no rows; keys whose only rows are retryable errors are
  retried (``--retry_failed`` retries permanent errors too), and so are keys
  whose result row has not all its event rows (``RESULT_WITHOUT_EVENTS``: a
  crash between BigQuery's separate inserts); ``--reprocess`` turns skipping off.
* Reconciliation (``--reconcile``): the same skip over a listing of the bucket, counting the objects that
  had no row at all (``files_reconciled``): the ones whose notification never led to a row. A streaming
  job does it once at its start, and skips notifications of objects done before it too.
"""
from __future__ import annotations

import collections
import logging
from typing import Callable, Iterable, Mapping, Optional

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.deduplicate import DeduplicatePerKey
from apache_beam.utils.timestamp import Duration

from audio.records import AudioObject, object_key
from results.tables import RESULT_WITHOUT_EVENTS
from transforms import METRICS_NAMESPACE

# The launcher (pipeline.main) shows INFO lines of the "pipeline" loggers: the reconcile tally is one.
_RECONCILE_LOG = logging.getLogger('pipeline.reconcile')
# What _SkipKnown says about each object on its tally output (with count_missing).
MISSING, RETRIED, NO_EVENTS, DONE = 'no row', 'retried', 'events missing', 'done'
TALLY = 'tally'
_SEED = ''


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

    def __init__(self, done_states: frozenset[str], count_missing: bool):
        self._done_states = done_states
        self._count_missing = count_missing
        self._skipped = Metrics.counter(METRICS_NAMESPACE, 'files_skipped_already_processed')
        self._retried = Metrics.counter(METRICS_NAMESPACE, 'files_retried')
        self._reconciled = Metrics.counter(METRICS_NAMESPACE, 'files_reconciled')
        self._no_events = Metrics.counter(METRICS_NAMESPACE, 'files_missing_events')

    def process(self, obj, known):
        state = known.get(obj.key)
        if state in self._done_states:
            self._skipped.inc()
            verdict = DONE
        elif state == RESULT_WITHOUT_EVENTS:  # its result row landed, not all its event rows: processed again
            self._no_events.inc()
            verdict = NO_EVENTS
        elif state is not None:  # it has only error rows that are to be retried
            self._retried.inc()
            verdict = RETRIED
        else:
            if self._count_missing:
                self._reconciled.inc()
            verdict = MISSING
        if self._count_missing:
            yield beam.pvalue.TaggedOutput(TALLY, verdict)
        if verdict != DONE:
            yield obj


class SkipAlreadyProcessed(beam.PTransform):
    """Drop objects whose (uri, generation) already has a row in one of ``done_states`` (batch replay; and
    streaming with --reconcile, against the rows there were at its start).

    ``read_states`` runs once on a worker at the start and returns {(audio_file, generation): state}
    (``results.store.ResultStore.key_states``: RESULT, RESULT_WITHOUT_EVENTS, PERMANENT_ERROR or RETRYABLE_ERROR).
    A result without all its events counts as ``files_missing_events`` and is processed again. ``count_missing``
    (reconciliation): the objects with no row at all count as ``files_reconciled``, and ``tally`` holds one
    verdict (MISSING, RETRIED, NO_EVENTS, DONE) per object, for ``LogReconcileTally``.
    """

    def __init__(self, read_states: Optional[Callable[[], Mapping[tuple[str, str], str]]],
                 done_states: frozenset[str], count_missing: bool = False):
        super().__init__()
        self._read_states = read_states
        self._done_states = done_states
        self._count_missing = count_missing
        self.tally: Optional[beam.PCollection] = None

    def expand(self, objects):
        if self._read_states is None:
            return objects
        read_states = self._read_states
        known = (objects.pipeline
                 | 'Start' >> beam.Create([None])
                 | 'ReadExistingKeys' >> beam.FlatMap(
                     lambda _: ((object_key(f, g), state) for (f, g), state in read_states().items())))
        skip = beam.ParDo(_SkipKnown(self._done_states, self._count_missing), known=beam.pvalue.AsDict(known))
        if not self._count_missing:
            return objects | 'Skip' >> skip
        outputs = objects | 'Skip' >> skip.with_outputs(TALLY, main='todo')
        self.tally = outputs[TALLY]
        return outputs.todo


def tally_line(source: str, counts: Mapping[str, int]) -> str:
    """The one line a reconciliation says: how many listed objects had no row, and what happens to them."""
    listed = sum(counts.values())
    no_events = (f'{counts[NO_EVENTS]} had a result row without all its event rows (processed again); '
                 if counts.get(NO_EVENTS) else '')
    return (f'Reconcile: {counts.get(MISSING, 0)} of {listed} audio objects under {source} had no row '
            f'(processed by this run); {counts.get(RETRIED, 0)} had only retryable errors (retried); '
            f'{no_events}{counts.get(DONE, 0)} were done.')


class LogReconcileTally(beam.PTransform):
    """Logs ``tally_line`` once the listing has been decided (a streaming job has no summary at the end)."""

    def __init__(self, source: str):
        super().__init__()
        self._source = source

    def expand(self, tally):
        # A GroupByKey, not CombineGlobally: Beam 2.77's local streaming runner cannot replace the lifted
        # combine's GroupByKey ("was not replaced as expected"). The listing is bounded, so its one group
        # fires once the listing is done; a seed makes it fire on an empty listing too.
        seed = tally.pipeline | 'Seed' >> beam.Create([_SEED])
        return ((tally, seed)
                | 'WithSeed' >> beam.Flatten()
                | 'OneKey' >> beam.Map(lambda verdict: ('tally', verdict))
                | 'Group' >> beam.GroupByKey()
                | 'Log' >> beam.Map(_log_tally, self._source))


def _log_tally(group: tuple[str, Iterable[str]], source: str) -> None:
    _RECONCILE_LOG.info('%s', tally_line(source, collections.Counter(v for v in group[1] if v != _SEED)))
