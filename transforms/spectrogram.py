"""Spectrogram stage: write one PNG per decoded file and remember its URI.

With ``--spectrogram_events`` the PNG is rendered here but written after inference, with the file's events
drawn on it (``MarkSpectrogramEvents``): written once, never read back.

Rendering is a pure function of the decoded samples: its failure is the file's
(permanent, first try). Writing the PNG is I/O: a failed write (Cloud Storage 503,
a full disk) is retried by ``transforms.failures.Retrier``, and only a moment that
outlasts ``--transient_retry_seconds`` becomes a retryable error row. A retried
write rewrites the same object name, so it never leaves a second PNG behind.
"""
from __future__ import annotations

import logging
from typing import Optional

import apache_beam as beam
from apache_beam.metrics import Metrics

from audio.naming import spectrogram_uri
from audio.records import AudioObject, Classification, DecodedAudio, ProcessedAudio
from audio.spectrogram import SpectrogramStyle, add_event_bands, render_png
from cloud.objects import write_object
from transforms import METRICS_NAMESPACE
from transforms.failures import DEFAULT_RETRIER, FAILED, Retrier, StageOutputs, as_input_failure
from transforms.overlap import OverlappedStage

_LOG = logging.getLogger(__name__)


def write_png(retrier: Retrier, uri: str, png: bytes) -> int:
    """Writes the PNG, retrying a bad moment; returns the attempts it took (raises ``StageFailure``)."""
    def log_retry(error: BaseException, wait: float) -> None:   # on a pool thread: OverlappedStage counts it
        _LOG.warning('writing %s failed (%s: %s); retrying in %.1f s', uri, type(error).__name__, str(error)[:200],
                     wait)

    _, attempts = retrier.call(lambda: write_object(uri, png, 'image/png'), on_retry=log_retry)
    return attempts


# A file's samples (float32) stay in memory while its PNG is written; overlapped writes hold up to
# transforms.overlap.OVERLAP_FILES of them, so only files up to ten minutes long (at 16 kHz, 38 MB each) are overlapped.
OVERLAP_MAX_SECONDS = 600


class _Render(OverlappedStage[DecodedAudio]):
    """Renders a file's PNG and, unless ``write`` is off, writes it. With ``write`` off the PNG travels with the
    file (``DecodedAudio.spectrogram_png``) and ``MarkSpectrogramEvents`` writes it, once, with its events."""

    def __init__(self, location: str, style: SpectrogramStyle, retrier: Retrier, write: bool = True):
        super().__init__('spectrogram', done='spectrograms_written' if write else 'spectrograms_rendered',
                         timing='render_ms', retried='spectrogram', failure_stages=('spectrogram',))
        self._location = location
        self._style = style
        self._retrier = retrier
        self._write = write

    def _render(self, decoded: DecodedAudio) -> tuple[str, bytes]:
        try:
            uri = spectrogram_uri(self._location, decoded.source)
            return uri, render_png(decoded.samples, decoded.sample_rate_hz, decoded.source.name, self._style)
        except Exception as e:
            raise as_input_failure(e) from e

    def work(self, decoded: DecodedAudio) -> tuple[DecodedAudio, int]:
        (uri, png), attempts = self._retrier.call(lambda: self._render(decoded))
        if not self._write:
            return decoded.with_spectrogram(uri, png), attempts
        return decoded.with_spectrogram(uri), write_png(self._retrier, uri, png)

    def overlaps(self, decoded: DecodedAudio) -> bool:
        # A local write is no round trip; a long file's samples are not held while others finish.
        return (self._write and self._location.startswith('gs://')
                and len(decoded.samples) <= OVERLAP_MAX_SECONDS * decoded.sample_rate_hz)

    def source(self, decoded: DecodedAudio) -> AudioObject:
        return decoded.source


class RenderSpectrogram(beam.PTransform):
    """DecodedAudio -> the same, with the URI of its spectrogram PNG (written under ``location``)."""

    def __init__(self, location: str, max_width: int, retrier: Retrier = DEFAULT_RETRIER, write: bool = True):
        """``write`` False: the PNG is rendered, not written; ``MarkSpectrogramEvents`` writes it."""
        super().__init__()
        self._fn = _Render(location, SpectrogramStyle(max_width=max_width), retrier, write)

    def expand(self, decoded):
        out = decoded | 'RenderAndWrite' >> beam.ParDo(self._fn).with_output_types(DecodedAudio).with_outputs(
            FAILED, main='ok')
        return StageOutputs(out.ok, out[FAILED])


Classified = tuple[ProcessedAudio, Classification]


class _MarkAndWrite(OverlappedStage[Classified]):
    """Draws a file's events onto the PNG ``_Render`` left with it, writes the PNG, and passes
    (item, classification) on without it.

    The events are an addition: a PNG they cannot be drawn on is written without them (logged and counted),
    never a failed file. The write is I/O, retried as ``_Render``'s is.
    """

    def __init__(self, retrier: Retrier):
        super().__init__('spectrogram', done='spectrograms_written', timing='spectrogram_write_ms',
                         retried='spectrogram', failure_stages=('spectrogram',))
        self._retrier = retrier
        self._marked = Metrics.counter(METRICS_NAMESPACE, 'spectrograms_marked')
        self._unmarked = Metrics.counter(METRICS_NAMESPACE, 'spectrogram_marks_failed')

    def work(self, classified: Classified) -> tuple[tuple[Classified, Optional[bool]], int]:
        item, result = classified
        png, marked = item.spectrogram_png, None
        if result.events:
            try:
                png = add_event_bands(png, item.info.duration_seconds,
                                      [(e.start_seconds, e.end_seconds, e.label) for e in result.events])
                marked = True
            except Exception:
                marked = False
                _LOG.warning('could not mark the events on %s', item.spectrogram_uri, exc_info=True)
        attempts = write_png(self._retrier, item.spectrogram_uri, png)
        return ((item.without_png(), result), marked), attempts

    def succeeded(self, output: tuple[Classified, Optional[bool]]) -> Classified:
        classified, marked = output
        if marked is not None:
            (self._marked if marked else self._unmarked).inc()
        return classified

    def overlaps(self, classified: Classified) -> bool:
        return classified[0].spectrogram_uri.startswith('gs://')   # only the PNG is held while it waits

    def source(self, classified: Classified) -> AudioObject:
        return classified[0].source


class MarkSpectrogramEvents(beam.PTransform):
    """(ProcessedAudio, Classification) -> the same, after writing the file's spectrogram with its events drawn
    on it (``RenderSpectrogram(write=False)`` rendered it); a write that fails is the file's retryable error."""

    def __init__(self, retrier: Retrier = DEFAULT_RETRIER):
        super().__init__()
        self._fn = _MarkAndWrite(retrier)

    def expand(self, classified):
        out = classified | 'MarkEvents' >> beam.ParDo(self._fn).with_outputs(FAILED, main='ok')
        return StageOutputs(out.ok, out[FAILED])
