"""transforms.dedupe.SkipAlreadyProcessed: the batch replay skip, on a real (local) Beam runner."""
import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from audio.records import AudioObject
from transforms.dedupe import SkipAlreadyProcessed

OBJECTS = [AudioObject(uri='/in/a.wav', name='a.wav', generation='1'),
           AudioObject(uri='/in/a.wav', name='a.wav', generation='2'),   # a newer version of a done file
           AudioObject(uri='/in/b.wav', name='b.wav', generation='1')]


def kept_uris_and_generations(read_keys):
    p = TestPipeline(runner='FnApiRunner')
    kept = p | beam.Create(OBJECTS) | SkipAlreadyProcessed(read_keys)
    assert_that(kept | beam.Map(lambda o: (o.uri, o.generation)), equal_to(
        [(o.uri, o.generation) for o in OBJECTS if (o.uri, o.generation) not in set(read_keys() if read_keys else ())]))
    result = p.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_name('files_skipped_already_processed'))['counters']
    return sum(c.committed for c in counters)


def already_done():
    return [('/in/a.wav', '1'), ('/in/gone.wav', '3')]


def test_files_with_a_row_for_their_generation_are_skipped_and_counted():
    assert kept_uris_and_generations(already_done) == 1


def test_without_a_reader_every_file_goes_on():
    assert kept_uris_and_generations(None) == 0


def test_an_empty_table_skips_nothing():
    assert kept_uris_and_generations(list) == 0
