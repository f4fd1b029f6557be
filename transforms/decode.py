"""Decode stage: AudioObject -> DecodedAudio (mono float32 at the model's rate).

Reading the object and decoding it are one attempt: a transient read failure
(Cloud Storage unavailable, a timeout) is retried by ``transforms.failures.Retrier``;
a 404 at the notified generation is ``ObjectGone`` (stage ``read``); a decode error
of bytes that were read without error is the file's (stage ``decode``), on the first try.
"""
from __future__ import annotations

import logging
import time

import apache_beam as beam
from apache_beam.metrics import Metrics

from audio.decode import decode
from audio.records import DecodedAudio
from transforms import METRICS_NAMESPACE
from cloud.objects import WatchedStream, open_object
from transforms.failures import (DEFAULT_RETRIER, FAILED, ObjectGone, Retrier, StageFailure, StageOutputs,
                                 as_input_failure, as_read_failure, tagged)

_LOG = logging.getLogger(__name__)


class _ReadFailed(Exception):
    """Carries a failure of the read itself out of the decoder (which would call it a damaged file)."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


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
        def log(error: BaseException, wait: float) -> None:
            self._retries.inc()
            _LOG.warning('reading %s failed (%s: %s); retrying in %.1f s', obj.uri, type(error).__name__,
                         str(error)[:200], wait)
        return log

    def process(self, obj):
        start = time.perf_counter()
        try:
            (samples, info), _ = self._retrier.call(lambda: self._read_and_decode(obj), classify=self._classify(obj),
                                                    on_retry=self._log_retry(obj))
        except StageFailure as f:
            decode_error = f.permanent and not isinstance(f.error, ObjectGone)
            (self._failed if decode_error else self._failed_read).inc()
            if not f.permanent:
                self._gave_up.inc()
            yield tagged(f.failed_audio(obj, 'decode' if decode_error else 'read'))
            return
        self._decoded.inc()
        self._audio_seconds.inc(int(round(info.duration_seconds)))
        self._decode_ms.update(int((time.perf_counter() - start) * 1000))
        yield DecodedAudio(source=obj, info=info, samples=samples, sample_rate_hz=self._rate)


class DecodeAudio(beam.PTransform):
    """AudioObject -> DecodedAudio at the model's rate; unreadable or undecodable files -> ``failed``."""

    def __init__(self, sample_rate_hz: int, max_duration_seconds: float, retrier: Retrier = DEFAULT_RETRIER):
        super().__init__()
        self._fn = _Decode(sample_rate_hz, max_duration_seconds, retrier)

    def expand(self, objects):
        out = objects | 'DecodeFile' >> beam.ParDo(self._fn).with_output_types(DecodedAudio).with_outputs(FAILED,
                                                                                                  main='ok')
        return StageOutputs(out.ok, out[FAILED])

