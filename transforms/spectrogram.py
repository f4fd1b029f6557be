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
from typing import NamedTuple, Optional

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
from transforms.overlap import Overlap, Windowing

_LOG = logging.getLogger(__name__)


def _write(uri: str, png: bytes) -> None:
    write_object(uri, png, 'image/png')


# A file's samples (float32) stay in memory while its PNG is written; overlapped writes hold up to
# transforms.overlap.OVERLAP_FILES of them, so only files up to ten minutes long (at 16 kHz, 38 MB each) are overlapped.
OVERLAP_MAX_SECONDS = 600


class _Outcome(NamedTuple):
    """One file's render and write: the PNG's URI, or the failure that stopped it."""
    decoded: DecodedAudio
    uri: str
    failure: Optional[StageFailure]
    attempts: int
    seconds: float


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
        def log(error: BaseException, wait: float) -> None:   # on a pool thread: counted in _emit
            _LOG.warning('writing %s failed (%s: %s); retrying in %.1f s', uri, type(error).__name__,
                         str(error)[:200], wait)
        return log

    def setup(self):
        self._overlap = Overlap(name='spectrogram')

    def start_bundle(self):
        self._overlap.start()

    def _attempt(self, decoded: DecodedAudio) -> _Outcome:
        """Renders and writes, retrying a bad moment; no Beam metrics here (this may run on a pool thread)."""
        start = time.perf_counter()
        try:
            (uri, png), _ = self._retrier.call(lambda: self._render(decoded))
            _, attempts = self._retrier.call(lambda: _write(uri, png), on_retry=self._log_retry(uri))
        except StageFailure as f:
            return _Outcome(decoded, '', f, f.attempts, time.perf_counter() - start)
        return _Outcome(decoded, uri, None, attempts, time.perf_counter() - start)

    def _emit(self, outcome: _Outcome):
        if outcome.attempts > 1:
            self._retries.inc(outcome.attempts - 1)
        f = outcome.failure
        if f is not None:
            self._failed.inc()
            if not f.permanent:
                self._gave_up.inc()
            yield tagged(f.failed_audio(outcome.decoded.source, 'spectrogram'))
            return
        self._rendered.inc()
        self._render_ms.update(int(outcome.seconds * 1000))
        yield outcome.decoded.with_spectrogram(outcome.uri)

    def process(self, decoded, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam,
                pane=beam.DoFn.PaneInfoParam):
        windowing = Windowing(timestamp, window, pane)
        if self._location.startswith('gs://') and len(decoded.samples) <= OVERLAP_MAX_SECONDS * decoded.sample_rate_hz:
            yield from self._overlap.submit(lambda: self._attempt(decoded), self._emit, windowing)
        else:   # a local write is no round trip; a long file's samples are not held while others finish
            yield from self._overlap.run_alone(lambda: self._attempt(decoded), self._emit, windowing)

    def finish_bundle(self):
        yield from self._overlap.drain()

    def teardown(self):
        self._overlap.close()


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
