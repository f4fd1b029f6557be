"""Spectrogram stage: write one PNG per decoded file and remember its URI."""
from __future__ import annotations

import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from audio.naming import spectrogram_uri
from audio.records import DecodedAudio, FailedAudio
from audio.spectrogram import SpectrogramStyle, render_png
from transforms import METRICS_NAMESPACE
from transforms.sources import FAILED, StageOutputs


class _Render(beam.DoFn):

    def __init__(self, location: str, style: SpectrogramStyle):
        self._location = location
        self._style = style
        self._rendered = Metrics.counter(METRICS_NAMESPACE, 'spectrograms_written')
        self._failed = Metrics.counter(METRICS_NAMESPACE, 'failed_spectrogram')
        self._render_ms = Metrics.distribution(METRICS_NAMESPACE, 'render_ms')

    def process(self, decoded):
        start = time.perf_counter()
        try:
            uri = spectrogram_uri(self._location, decoded.source)
            png = render_png(decoded.samples, decoded.sample_rate_hz, decoded.source.name, self._style)
            with FileSystems.create(uri, mime_type='image/png') as f:
                f.write(png)
        except Exception as e:  # one file's failure (or a write error) becomes its error row
            self._failed.inc()
            yield beam.pvalue.TaggedOutput(FAILED, FailedAudio(decoded.source, 'spectrogram', type(e).__name__,
                                                               str(e)))
            return
        self._rendered.inc()
        self._render_ms.update(int((time.perf_counter() - start) * 1000))
        yield decoded.with_spectrogram(uri)


class RenderSpectrogram(beam.PTransform):

    def __init__(self, location: str, max_width: int):
        super().__init__()
        self._fn = _Render(location, SpectrogramStyle(max_width=max_width))

    def expand(self, decoded):
        out = decoded | 'RenderAndWrite' >> beam.ParDo(self._fn).with_output_types(DecodedAudio).with_outputs(
            FAILED, main='ok')
        return StageOutputs(out.ok, out[FAILED])
