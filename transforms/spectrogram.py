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
from audio.spectrogram import SpectrogramStyle, render_png
from transforms import METRICS_NAMESPACE
from transforms.failures import (DEFAULT_RETRIER, FAILED, Retrier, StageFailure, StageOutputs, as_input_failure,
                                 tagged)

_LOG = logging.getLogger(__name__)


def _write(uri: str, png: bytes) -> None:
    with FileSystems.create(uri, mime_type='image/png') as f:
        f.write(png)


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

    def __init__(self, location: str, max_width: int, retrier: Retrier = DEFAULT_RETRIER):
        super().__init__()
        self._fn = _Render(location, SpectrogramStyle(max_width=max_width), retrier)

    def expand(self, decoded):
        out = decoded | 'RenderAndWrite' >> beam.ParDo(self._fn).with_output_types(DecodedAudio).with_outputs(
            FAILED, main='ok')
        return StageOutputs(out.ok, out[FAILED])
