"""The two sources. Both output ``AudioObject`` elements and a ``failed`` PCollection.

* ``ReadNotifications``: streaming, Cloud Storage notifications from Pub/Sub.
* ``MatchFiles``: batch replay over a local or gs:// glob.
"""
from __future__ import annotations

import glob
import logging
import os
import time
from typing import Mapping, Optional, Sequence

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import FileMetadata
from apache_beam.metrics import Metrics

from audio.naming import is_audio_name, is_partial_upload, is_under
from audio.records import AudioObject, FailedAudio
from transforms import METRICS_NAMESPACE
from cloud.notification import Ignored, MalformedNotification, parse_notification
from cloud.listing import static_prefix
from cloud.objects import gcs_generation, local_generation, split_gcs
from transforms.failures import (DEFAULT_RETRIER, FAILED, ObjectGone, Retrier, StageFailure, StageOutputs,
                                 as_read_failure, tagged)

_LOG = logging.getLogger(__name__)


class _ParseNotification(beam.DoFn):

    def __init__(self, ignore_prefix: str):
        self._ignore_prefix = ignore_prefix
        self._received = Metrics.counter(METRICS_NAMESPACE, 'notifications_received')
        self._malformed = Metrics.counter(METRICS_NAMESPACE, 'notifications_malformed')
        self._ignored = {reason: Metrics.counter(METRICS_NAMESPACE, f'notifications_ignored_{reason}')
                         for reason in ('event_type', 'not_audio', 'own_output')}

    def process(self, message):
        self._received.inc()
        try:
            parsed = parse_notification(message.data, message.attributes, self._ignore_prefix)
        except MalformedNotification as e:
            self._malformed.inc()
            uri = e.uri or f'pubsub:message/{getattr(message, "message_id", None) or "unknown"}'
            yield tagged(FailedAudio(AudioObject(uri=uri, name=uri), 'parse', 'MalformedNotification', str(e)))
            return
        if isinstance(parsed, Ignored):
            self._ignored[parsed.reason].inc()
            return
        yield parsed


class ParseNotifications(beam.PTransform):
    """PubsubMessage -> the finalized audio objects it announces (others ignored, malformed ones failed)."""

    def __init__(self, ignore_prefix: str):
        super().__init__()
        self._ignore_prefix = ignore_prefix

    def expand(self, messages):
        parsed = messages | 'ParseEach' >> beam.ParDo(_ParseNotification(self._ignore_prefix)).with_outputs(
            FAILED, main='ok')
        return StageOutputs(parsed.ok, parsed[FAILED])


class ReadNotifications(beam.PTransform):
    """Pub/Sub Cloud Storage notifications -> the finalized audio objects to process."""

    def __init__(self, subscription: str, ignore_prefix: str):
        super().__init__()
        self._subscription = subscription
        self._ignore_prefix = ignore_prefix

    def expand(self, pbegin):
        return (pbegin
                | 'ReadFromPubSub' >> beam.io.ReadFromPubSub(subscription=self._subscription, with_attributes=True)
                | 'Parse' >> ParseNotifications(self._ignore_prefix))


def _live_generation(path: str) -> str:
    """The generation of a matched object now; ObjectGone when it was deleted after it matched."""
    if path.startswith('gs://'):
        generation = gcs_generation(path)
        if generation is None:
            raise ObjectGone(f'{path} was deleted after it matched')
        return generation
    return local_generation(path)


class _ToAudioObject(beam.DoFn):
    """A matched path -> its AudioObject at the live generation. ``reconciling``: an object deleted since the
    listing is skipped, not failed: a reconciliation adds what has no row, and a deleted object has no live
    generation to add (its own notification, if any, gives it its row at the generation it names)."""

    def __init__(self, pattern: str, retrier: Retrier, seen_at: Optional[Mapping[str, float]] = None,
                 reconciling: bool = False):
        self._root = static_prefix(pattern)
        self._retrier = retrier
        self._seen_at = dict(seen_at or {})
        self._reconciling = reconciling
        self._matched = Metrics.counter(METRICS_NAMESPACE, 'files_matched')
        self._gone = Metrics.counter(METRICS_NAMESPACE, 'files_deleted_after_listing')
        self._retries = Metrics.counter(METRICS_NAMESPACE, 'transient_retries_read')

    def _log_retry(self, path: str):
        def log(error: BaseException, wait: float) -> None:
            self._retries.inc()
            _LOG.warning('describing %s failed (%s: %s); retrying in %.1f s', path, type(error).__name__,
                         str(error)[:200], wait)
        return log

    def process(self, metadata: FileMetadata):
        seen_at = self._seen_at.get(metadata.path) or time.time()  # the watcher's first listing, else this match
        self._matched.inc()
        path = metadata.path
        if path.startswith('gs://'):
            bucket, name = split_gcs(path)
        else:
            bucket, name = None, os.path.relpath(path, self._root) if self._root else path
        obj = AudioObject(uri=path, name=name, bucket=bucket)
        try:
            generation, _ = self._retrier.call(lambda: _live_generation(path),
                                               classify=lambda e: as_read_failure(e, obj),
                                               on_retry=self._log_retry(path))
        except StageFailure as f:  # one unreadable object is one input's failure, not the job's
            if self._reconciling and isinstance(f.error, ObjectGone):
                self._gone.inc()
                _LOG.info('%s was deleted after the listing: nothing to reconcile', path)
                return
            yield tagged(f.failed_audio(obj, 'read'))
            return
        yield AudioObject(uri=path, name=name, generation=generation, bucket=bucket,
                          size=metadata.size_in_bytes, event_time=metadata.last_updated_in_seconds or None,
                          seen_at=seen_at)


class MatchFiles(beam.PTransform):
    """Every file a glob matches (except our own outputs and uploads still being saved) -> AudioObject, spread
    across workers. ``listed``: the files a watch-mode listing already found (FileMetadata), matched no more;
    ``seen_at``: when the watcher first listed each of them (path -> seconds since the epoch).
    ``reconciling`` (--reconcile): pick what streaming would have picked, so skip names the notification
    parser ignores as not audio and objects deleted since the listing (not an error of theirs: nothing is
    left to add)."""

    def __init__(self, pattern: str, ignore_prefix: str, retrier: Retrier = DEFAULT_RETRIER,
                 listed: Optional[Sequence[FileMetadata]] = None, reconciling: bool = False,
                 seen_at: Optional[Mapping[str, float]] = None):
        super().__init__()
        self._reconciling = reconciling
        self._pattern = pattern  # gs://, or local and absolute (pipeline.main.parse), like ignore_prefix
        self._ignore_prefix = ignore_prefix
        self._retrier = retrier
        self._listed = listed
        self._seen_at = seen_at

    def expand(self, pbegin):
        match = (beam.Create(list(self._listed)) if self._listed is not None
                 else fileio.MatchFiles(self._pattern, empty_match_treatment=fileio.EmptyMatchTreatment.ALLOW))
        matched = (pbegin
                   | 'Match' >> match
                   | 'SkipOwnOutputs' >> beam.Filter(
                       lambda m, prefix, audio_only: (not (prefix and is_under(m.path, prefix))
                                                      and not is_partial_upload(m.path)
                                                      and (is_audio_name(m.path) or not audio_only)),
                       self._ignore_prefix, self._reconciling)
                   # Matching happens in one place; spread the files over all workers before decoding.
                   | 'Spread' >> beam.Reshuffle()
                   | 'Describe' >> beam.ParDo(_ToAudioObject(self._pattern, self._retrier, self._seen_at,
                                                               self._reconciling)).with_outputs(
                       FAILED, main='ok'))
        return StageOutputs(matched.ok, matched[FAILED])


def count_local_matches(pattern: str) -> int:
    """How many local files a glob matches (for progress display)."""
    return sum(1 for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
