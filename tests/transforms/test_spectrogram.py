import io
import os

import apache_beam as beam
import numpy as np
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image

from audio.records import AudioInfo, AudioObject, DecodedAudio
from audio.synth import sine_sweep
from transforms.failures import Retrier
from transforms.spectrogram import RenderSpectrogram


def decoded(name, samples):
    return DecodedAudio(source=AudioObject(uri=f'/in/{name}', name=name, generation='7'),
                        info=AudioInfo(16000, 1, len(samples) / 16000), samples=samples, sample_rate_hz=16000)


def test_writes_one_png_per_file_under_the_location(tmp_path):
    location = str(tmp_path / 'spectrograms')
    items = [decoded('a b.wav', sine_sweep(1.0, 16000)), decoded('../../escape.wav', sine_sweep(0.5, 16000))]
    with TestPipeline(runner='FnApiRunner') as p:
        out = p | beam.Create(items) | RenderSpectrogram(location, max_width=800)
        uris = out.ok | beam.Map(lambda d: d.spectrogram_uri)

        def check(found):
            assert len(found) == 2
            for uri in found:
                assert uri.startswith(location + '/') and os.path.getsize(uri) > 1000
                with open(uri, 'rb') as f:
                    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
        assert_that(uris, check)


def test_an_unwritable_location_is_retried_then_fails_the_file_retryably_not_the_job(tmp_path):
    # Not the file's fault (the operator fixes the location, then a replay retries it): transient.
    blocker = tmp_path / 'file'
    blocker.write_text('a file where a folder should be')
    retrier = Retrier(deadline_s=3, initial_s=0.05)   # a budget the first attempt cannot use up under load
    with TestPipeline(runner='FnApiRunner') as p:
        out = p | beam.Create([decoded('a.wav', np.zeros(16000, np.float32))]) | RenderSpectrogram(str(blocker),
                                                                                                  800, retrier)
        assert_that(out.failed | beam.Map(lambda f: (f.source.uri, f.stage, f.retryable, f.attempts > 1)),
                    equal_to([('/in/a.wav', 'spectrogram', True, True)]))


def test_with_events_the_png_is_rendered_first_then_written_once_with_its_events_drawn(tmp_path, monkeypatch):
    """--spectrogram_events: RenderSpectrogram(write=False) writes nothing; MarkSpectrogramEvents writes the PNG
    once, events drawn, and passes the file on without the PNG bytes; a PNG without events is written as drawn."""
    import transforms.spectrogram as stage
    from audio.records import Classification, Event, ProcessedAudio
    from audio.spectrogram import EVENT_STRIP
    from tests.helpers import run_dofn, unwrapped

    writes = []
    real_write = stage.write_object
    monkeypatch.setattr(stage, 'write_object',
                        lambda uri, data, kind: (writes.append(uri), real_write(uri, data, kind)))
    location = str(tmp_path / 'spectrograms')
    items = [decoded('a.wav', sine_sweep(2.0, 16000)), decoded('b.wav', sine_sweep(1.0, 16000))]
    rendered = unwrapped(run_dofn(stage._Render(location, stage.SpectrogramStyle(max_width=800), Retrier(), False),
                                  items))
    assert writes == [] and not os.path.exists(location)
    assert all(r.spectrogram_png.startswith(b'\x89PNG') and r.spectrogram_uri.startswith(location) for r in rendered)

    def classified(item, events):
        return ProcessedAudio.of(item), Classification('sweep', 0.9, (('sweep', 0.9),), 'm', 3, events)

    out = unwrapped(run_dofn(stage._MarkAndWrite(Retrier()), [
        classified(rendered[0], (Event(0.5, 1.5, 'sweep', 0.9),)), classified(rendered[1], ())]))
    assert writes == [r.spectrogram_uri for r in rendered]   # each PNG once
    assert [item.spectrogram_png for item, _ in out] == [b'', b'']
    marked, plain = (Image.open(r.spectrogram_uri) for r in rendered)
    with Image.open(io.BytesIO(rendered[0].spectrogram_png)) as unmarked:
        assert marked.size == (unmarked.width, unmarked.height + EVENT_STRIP)
    with open(rendered[1].spectrogram_uri, 'rb') as f:
        assert f.read() == rendered[1].spectrogram_png
    marked.close()
    plain.close()
