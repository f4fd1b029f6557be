import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from audio.records import AudioObject
from tests.helpers import write_bytes, write_clip
from transforms.decode import DecodeAudio


def test_decode_stage_splits_good_and_bad_files(tmp_path):
    good = write_clip(tmp_path, 'a.flac', 'flac', seconds=2.0, rate=44100, channels=2)
    empty = write_bytes(tmp_path, 'e.wav', b'')
    text = write_bytes(tmp_path, 'n.wav', b'hello' * 100)
    missing = str(tmp_path / 'gone.wav')
    objects = [AudioObject(uri=p, name=p.rsplit('/', 1)[-1], generation='1') for p in (good, empty, text, missing)]
    with TestPipeline(runner='FnApiRunner') as p:
        out = p | beam.Create(objects) | DecodeAudio(16000, max_duration_seconds=60)
        assert_that(out.ok | beam.Map(lambda d: (d.source.uri, len(d.samples), d.info.channels,
                                                  d.info.sample_rate_hz)),
                    equal_to([(good, 32000, 2, 44100)]))
        assert_that(out.failed | 'F' >> beam.Map(lambda f: (f.source.uri, f.stage, f.error_type)),
                    equal_to([(empty, 'decode', 'EmptyFile'), (text, 'decode', 'NotAudio'),
                              (missing, 'read', 'ObjectGone')]), label='Failures')


def test_too_long_becomes_a_failure(tmp_path):
    path = write_clip(tmp_path, 'long.wav', seconds=6.0)
    with TestPipeline(runner='FnApiRunner') as p:
        out = p | beam.Create([AudioObject(uri=path, name='long.wav')]) | DecodeAudio(16000, max_duration_seconds=5)
        assert_that(out.failed | beam.Map(lambda f: f.error_type), equal_to(['TooLong']))
        assert_that(out.ok, equal_to([]), label='NothingDecoded')
