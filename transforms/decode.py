"""Decode stage: AudioObject -> DecodedAudio (mono float32 at the model's rate).

Reading the object and decoding it are one attempt: a transient read failure
(Cloud Storage unavailable, a timeout) is retried by ``transforms.failures.Retrier``;
a 404 at the notified generation is ``ObjectGone`` (stage ``read``); a decode error
of bytes that were read without error is the file's (stage ``decode``), on the first try.
"""
from __future__ import annotations

import logging
import time
from typing import NamedTuple, Optional

import apache_beam as beam
from apache_beam.metrics import Metrics

from audio.decode import decode
from audio.records import AudioObject, DecodedAudio
from cloud.objects import WHOLE_OBJECT_BYTES, WatchedStream, open_object
from transforms import METRICS_NAMESPACE
from transforms.failures import (DEFAULT_RETRIER, FAILED, ObjectGone, Retrier, StageFailure, StageOutputs,
                                 as_input_failure, as_read_failure, tagged)
from transforms.overlap import Overlap, Windowing

_LOG = logging.getLogger(__name__)


class _ReadFailed(Exception):
    """Carries a failure of the read itself out of the decoder (which would call it a damaged file)."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


class _Outcome(NamedTuple):
    """One file's read and decode: the decoded audio, or the failure that stopped it."""
    source: AudioObject
    decoded: Optional[DecodedAudio]
    failure: Optional[StageFailure]
    attempts: int
    seconds: float


def is_remote_and_small(obj: AudioObject) -> bool:
    """Read from Cloud Storage in one request (cloud/objects.py): worth overlapping, and small to hold."""
    return obj.uri.startswith('gs://') and 0 < (obj.size or 0) <= WHOLE_OBJECT_BYTES


class _Decode(beam.DoFn):

    def __init__(self, sample_rate_hz: int, max_duration_seconds: float, retrier: Retrier):
        self._rate = sample_rate_hz
        self._max_seconds = max_duration_seconds
        self._retrier = retrier
        self._decoded = Metrics.counter(METRICS_NAMESPACE, 'files_decoded')
        self._failed = Metrics.counter(METRICS_NAMESPACE, 'failed_decode')
        self._failed_read = Metrics.counter(METRICS_NAMESPACE, 'failed_read')
        self._retries = Metrics.counter(METRICS_NAMESPACE, 'transient_retries_read')
        self._gave_up = Metrics.counter(METRICS_NAMESPACE, 'retryable_failures_read')
        self._audio_seconds = Metrics.counter(METRICS_NAMESPACE, 'audio_seconds_decoded')
        self._decode_ms = Metrics.distribution(METRICS_NAMESPACE, 'decode_ms')

    def _read_and_decode(self, obj):
        with open_object(obj) as raw:
            stream = WatchedStream(raw)
            try:
                return decode(stream, self._rate, self._max_seconds, size=obj.size)
            except Exception as e:
                if stream.error is not None:
                    raise _ReadFailed(stream.error) from e
                raise as_input_failure(e) from e

    def _classify(self, obj):
        def classify(error: BaseException) -> BaseException:
            return as_read_failure(error.error if isinstance(error, _ReadFailed) else error, obj)
        return classify

    def _log_retry(self, obj):
        def log(error: BaseException, wait: float) -> None:   # on a pool thread: counted in _emit
            _LOG.warning('reading %s failed (%s: %s); retrying in %.1f s', obj.uri, type(error).__name__,
                         str(error)[:200], wait)
        return log

    def setup(self):
        self._overlap = Overlap(name='decode')

    def start_bundle(self):
        self._overlap.start()

    def _attempt(self, obj) -> _Outcome:
        """Reads and decodes, retrying a bad moment; no Beam metrics here (this may run on a pool thread)."""
        start = time.perf_counter()
        try:
            (samples, info), attempts = self._retrier.call(lambda: self._read_and_decode(obj),
                                                           classify=self._classify(obj),
                                                           on_retry=self._log_retry(obj))
        except StageFailure as f:
            return _Outcome(obj, None, f, f.attempts, time.perf_counter() - start)
        decoded = DecodedAudio(source=obj, info=info, samples=samples, sample_rate_hz=self._rate)
        return _Outcome(obj, decoded, None, attempts, time.perf_counter() - start)

    def _emit(self, outcome: _Outcome):
        if outcome.attempts > 1:
            self._retries.inc(outcome.attempts - 1)
        f = outcome.failure
        if f is not None:
            decode_error = f.permanent and not isinstance(f.error, ObjectGone)
            (self._failed if decode_error else self._failed_read).inc()
            if not f.permanent:
                self._gave_up.inc()
            yield tagged(f.failed_audio(outcome.source, 'decode' if decode_error else 'read'))
            return
        assert outcome.decoded is not None
        self._decoded.inc()
        self._audio_seconds.inc(int(round(outcome.decoded.info.duration_seconds)))
        self._decode_ms.update(int(outcome.seconds * 1000))
        yield outcome.decoded

    def process(self, obj, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam,
                pane=beam.DoFn.PaneInfoParam):
        windowing = Windowing(timestamp, window, pane)
        if is_remote_and_small(obj):   # a round trip to overlap, and little to hold while it is in flight
            yield from self._overlap.submit(lambda: self._attempt(obj), self._emit, windowing)
        else:
            yield from self._overlap.run_alone(lambda: self._attempt(obj), self._emit, windowing)

    def finish_bundle(self):
        yield from self._overlap.drain()

    def teardown(self):
        self._overlap.close()


class DecodeAudio(beam.PTransform):
    """AudioObject -> DecodedAudio at the model's rate; unreadable or undecodable files -> ``failed``."""

    def __init__(self, sample_rate_hz: int, max_duration_seconds: float, retrier: Retrier = DEFAULT_RETRIER):
        super().__init__()
        self._fn = _Decode(sample_rate_hz, max_duration_seconds, retrier)

    def expand(self, objects):
        out = objects | 'DecodeFile' >> beam.ParDo(self._fn).with_output_types(DecodedAudio).with_outputs(FAILED,
                                                                                                  main='ok')
        return StageOutputs(out.ok, out[FAILED])

