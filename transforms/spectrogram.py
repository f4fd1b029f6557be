"""Spectrogram stage: write one PNG per decoded file and remember its URI.

Rendering is a pure function of the decoded samples: its failure is the file's
(permanent, first try). Writing the PNG is I/O: a failed write (Cloud Storage 503,
a full disk) is retried by ``transforms.failures.Retrier``, and only a moment that
outlasts ``--transient_retry_seconds`` becomes a retryable error row. A retried
write rewrites the same object name, so it never leaves a second PNG behind.
"""
from __future__ import annotations

import logging
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from audio.naming import spectrogram_uri
from audio.records import DecodedAudio
from audio.spectrogram import SpectrogramStyle, add_event_bands, render_png
from cloud.objects import write_object
from transforms import METRICS_NAMESPACE
from transforms.failures import (DEFAULT_RETRIER, FAILED, Retrier, StageFailure, StageOutputs, as_input_failure,
                                 tagged)

_LOG = logging.getLogger(__name__)


def _write(uri: str, png: bytes) -> None:
    write_object(uri, png, 'image/png')


class _Render(beam.DoFn):

    def __init__(self, location: str, style: SpectrogramStyle, retrier: Retrier):
        self._location = location
        self._style = style
        self._retrier = retrier
        self._rendered = Metrics.counter(METRICS_NAMESPACE, 'spectrograms_written')
        self._failed = Metrics.counter(METRICS_NAMESPACE, 'failed_spectrogram')
        self._retries = Metrics.counter(METRICS_NAMESPACE, 'transient_retries_spectrogram')
        self._gave_up = Metrics.counter(METRICS_NAMESPACE, 'retryable_failures_spectrogram')
        self._render_ms = Metrics.distribution(METRICS_NAMESPACE, 'render_ms')

    def _render(self, decoded) -> tuple[str, bytes]:
        try:
            uri = spectrogram_uri(self._location, decoded.source)
            return uri, render_png(decoded.samples, decoded.sample_rate_hz, decoded.source.name, self._style)
        except Exception as e:
            raise as_input_failure(e) from e

    def _log_retry(self, uri: str):
        def log(error: BaseException, wait: float) -> None:
            self._retries.inc()
            _LOG.warning('writing %s failed (%s: %s); retrying in %.1f s', uri, type(error).__name__,
                         str(error)[:200], wait)
        return log

    def process(self, decoded):
        start = time.perf_counter()
        try:
            (uri, png), _ = self._retrier.call(lambda: self._render(decoded))
            _, _ = self._retrier.call(lambda: _write(uri, png), on_retry=self._log_retry(uri))
        except StageFailure as f:
            self._failed.inc()
            if not f.permanent:
                self._gave_up.inc()
            yield tagged(f.failed_audio(decoded.source, 'spectrogram'))
            return
        self._rendered.inc()
        self._render_ms.update(int((time.perf_counter() - start) * 1000))
        yield decoded.with_spectrogram(uri)


class RenderSpectrogram(beam.PTransform):
    """DecodedAudio -> the same, with the URI of its spectrogram PNG (written under ``location``)."""

    def __init__(self, location: str, max_width: int, retrier: Retrier = DEFAULT_RETRIER):
        super().__init__()
        self._fn = _Render(location, SpectrogramStyle(max_width=max_width), retrier)

    def expand(self, decoded):
        out = decoded | 'RenderAndWrite' >> beam.ParDo(self._fn).with_output_types(DecodedAudio).with_outputs(
            FAILED, main='ok')
        return StageOutputs(out.ok, out[FAILED])


class _MarkEvents(beam.DoFn):
    """Rewrites a file's PNG with its events marked; passes (item, classification) on unchanged.

    The row is what matters: a PNG that cannot be marked is logged and counted, never a failed file.
    """

    def __init__(self):
        self._marked = Metrics.counter(METRICS_NAMESPACE, 'spectrograms_marked')
        self._failed = Metrics.counter(METRICS_NAMESPACE, 'spectrogram_marks_failed')

    def process(self, classified):
        item, result = classified
        if result.events and item.spectrogram_uri:
            try:
                with FileSystems.open(item.spectrogram_uri) as f:
                    png = f.read()
                marked = add_event_bands(png, item.info.duration_seconds,
                                         [(e.start_seconds, e.end_seconds, e.label) for e in result.events])
                _write(item.spectrogram_uri, marked)
                self._marked.inc()
            except Exception:
                self._failed.inc()
                _LOG.warning('could not mark the events on %s', item.spectrogram_uri, exc_info=True)
        yield classified


class MarkSpectrogramEvents(beam.PTransform):
    """(ProcessedAudio, Classification) -> the same, after drawing the events onto the file's spectrogram."""

    def expand(self, classified):
        return classified | 'MarkEvents' >> beam.ParDo(_MarkEvents())
