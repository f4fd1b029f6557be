"""Decode stage: AudioObject -> DecodedAudio (mono float32 at the model's rate)."""
from __future__ import annotations

import time

import apache_beam as beam
from apache_beam.metrics import Metrics

from audio.decode import DecodeError, decode
from audio.records import DecodedAudio, FailedAudio
from transforms import METRICS_NAMESPACE
from cloud.objects import ObjectGone, open_object
from transforms.sources import FAILED, StageOutputs


def _is_not_found(error: Exception) -> bool:
    return type(error).__name__ == 'NotFound' or getattr(error, 'code', None) == 404


class _Decode(beam.DoFn):

    def __init__(self, sample_rate_hz: int, max_duration_seconds: float):
        self._rate = sample_rate_hz
        self._max_seconds = max_duration_seconds
        self._decoded = Metrics.counter(METRICS_NAMESPACE, 'files_decoded')
        self._failed = Metrics.counter(METRICS_NAMESPACE, 'failed_decode')
        self._failed_read = Metrics.counter(METRICS_NAMESPACE, 'failed_read')
        self._audio_seconds = Metrics.counter(METRICS_NAMESPACE, 'audio_seconds_decoded')
        self._decode_ms = Metrics.distribution(METRICS_NAMESPACE, 'decode_ms')

    def process(self, obj):
        start = time.perf_counter()
        try:
            with open_object(obj) as stream:
                samples, info = decode(stream, self._rate, self._max_seconds, size=obj.size)
        except DecodeError as e:
            self._failed.inc()
            yield beam.pvalue.TaggedOutput(FAILED, FailedAudio(obj, 'decode', e.error_type, str(e)))
            return
        except ObjectGone as e:
            self._failed_read.inc()
            yield beam.pvalue.TaggedOutput(FAILED, FailedAudio(obj, 'read', 'ObjectGone', str(e)))
            return
        except Exception as e:  # any other input-specific failure must not stop the job
            if _is_not_found(e):
                self._failed_read.inc()
                yield beam.pvalue.TaggedOutput(FAILED, FailedAudio(
                    obj, 'read', 'ObjectGone', f'{obj.uri} generation {obj.generation} no longer exists '
                                               '(deleted or overwritten before it was read)'))
                return
            self._failed.inc()
            yield beam.pvalue.TaggedOutput(FAILED, FailedAudio(obj, 'decode', type(e).__name__, str(e)))
            return
        self._decoded.inc()
        self._audio_seconds.inc(int(round(info.duration_seconds)))
        self._decode_ms.update(int((time.perf_counter() - start) * 1000))
        yield DecodedAudio(source=obj, info=info, samples=samples, sample_rate_hz=self._rate)


class DecodeAudio(beam.PTransform):

    def __init__(self, sample_rate_hz: int, max_duration_seconds: float):
        super().__init__()
        self._fn = _Decode(sample_rate_hz, max_duration_seconds)

    def expand(self, objects):
        out = objects | 'DecodeFile' >> beam.ParDo(self._fn).with_output_types(DecodedAudio).with_outputs(FAILED,
                                                                                                  main='ok')
        return StageOutputs(out.ok, out[FAILED])
