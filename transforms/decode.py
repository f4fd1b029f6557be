"""Decode stage: AudioObject -> DecodedAudio (mono float32 at the model's rate; 16-bit PCM kept as int16; a
long file's samples on local disk, ``audio.spill``).

Reading the object and decoding it are one attempt: a transient read failure
(Cloud Storage unavailable, a timeout) is retried by ``transforms.failures.Retrier``;
a 404 at the notified generation is ``ObjectGone`` (stage ``read``); a decode error
of bytes that were read without error is the file's (stage ``decode``), on the first try.
"""
from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam.metrics import Metrics

from audio.decode import decode
from audio.records import AudioObject, DecodedAudio
from audio.spill import SPILL_BYTES
from cloud.objects import WHOLE_OBJECT_BYTES, WatchedStream, open_object
from transforms import METRICS_NAMESPACE
from transforms.failures import (DEFAULT_RETRIER, FAILED, ObjectGone, Retrier, StageFailure, StageOutputs,
                                 as_input_failure, as_read_failure)
from transforms.overlap import OverlappedStage

_LOG = logging.getLogger(__name__)


class _ReadFailed(Exception):
    """Carries a failure of the read itself out of the decoder (which would call it a damaged file)."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


def is_remote_and_small(obj: AudioObject) -> bool:
    """Read from Cloud Storage in one request (cloud/objects.py): worth overlapping, and small to hold."""
    return obj.uri.startswith('gs://') and 0 < (obj.size or 0) <= WHOLE_OBJECT_BYTES


class _Decode(OverlappedStage[AudioObject]):

    def __init__(self, sample_rate_hz: int, max_duration_seconds: float, retrier: Retrier):
        super().__init__('decode', done='files_decoded', timing='decode_ms', retried='read',
                         failure_stages=('decode', 'read'))
        self._rate = sample_rate_hz
        self._max_seconds = max_duration_seconds
        self._retrier = retrier
        self._audio_seconds = Metrics.counter(METRICS_NAMESPACE, 'audio_seconds_decoded')

    def _read_and_decode(self, obj):
        with open_object(obj) as raw:
            stream = WatchedStream(raw)
            try:
                return decode(stream, self._rate, self._max_seconds, size=obj.size, pcm16=True,
                              spill_bytes=SPILL_BYTES)
            except Exception as e:
                if stream.error is not None:
                    raise _ReadFailed(stream.error) from e
                raise as_input_failure(e) from e

    def _classify(self, obj):
        def classify(error: BaseException) -> BaseException:
            return as_read_failure(error.error if isinstance(error, _ReadFailed) else error, obj)
        return classify

    def _log_retry(self, obj):
        def log(error: BaseException, wait: float) -> None:   # on a pool thread: OverlappedStage counts it
            _LOG.warning('reading %s failed (%s: %s); retrying in %.1f s', obj.uri, type(error).__name__,
                         str(error)[:200], wait)
        return log

    def work(self, obj: AudioObject) -> tuple[DecodedAudio, int]:
        (samples, info), attempts = self._retrier.call(lambda: self._read_and_decode(obj),
                                                       classify=self._classify(obj), on_retry=self._log_retry(obj))
        return DecodedAudio(source=obj, info=info, samples=samples, sample_rate_hz=self._rate), attempts

    def overlaps(self, obj: AudioObject) -> bool:
        return is_remote_and_small(obj)

    def source(self, obj: AudioObject) -> AudioObject:
        return obj

    def failure_stage(self, obj: AudioObject, failure: StageFailure) -> str:
        """A permanent failure of bytes that were read is the file's (decode); the rest is the read's."""
        return 'decode' if failure.permanent and not isinstance(failure.error, ObjectGone) else 'read'

    def succeeded(self, decoded: DecodedAudio) -> DecodedAudio:
        self._audio_seconds.inc(int(round(decoded.info.duration_seconds)))
        return decoded


class DecodeAudio(beam.PTransform):
    """AudioObject -> DecodedAudio at the model's rate; unreadable or undecodable files -> ``failed``."""

    def __init__(self, sample_rate_hz: int, max_duration_seconds: float, retrier: Retrier = DEFAULT_RETRIER):
        super().__init__()
        self._fn = _Decode(sample_rate_hz, max_duration_seconds, retrier)

    def expand(self, objects):
        out = objects | 'DecodeFile' >> beam.ParDo(self._fn).with_output_types(DecodedAudio).with_outputs(FAILED,
                                                                                                  main='ok')
        return StageOutputs(out.ok, out[FAILED])

