"""transforms.dedupe.SkipAlreadyProcessed: the batch replay skip, on a real (local) Beam runner."""
import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from audio.records import AudioObject
from results.sqlite_store import PERMANENT_ERROR, RESULT, RETRYABLE_ERROR
from transforms.dedupe import SkipAlreadyProcessed

OBJECTS = [AudioObject(uri='/in/a.wav', name='a.wav', generation='1'),
           AudioObject(uri='/in/a.wav', name='a.wav', generation='2'),   # a newer version of a done file
           AudioObject(uri='/in/b.wav', name='b.wav', generation='1'),
           AudioObject(uri='/in/c.wav', name='c.wav', generation='1'),
           AudioObject(uri='/in/d.wav', name='d.wav', generation='1')]
DEFAULT_DONE = frozenset({RESULT, PERMANENT_ERROR})


def run_skip(read_states, done=DEFAULT_DONE):
    """(kept (uri, generation)s, {counter: value}) of one run."""
    p = TestPipeline(runner='FnApiRunner')
    kept = p | beam.Create(OBJECTS) | SkipAlreadyProcessed(read_states, done)
    states = read_states() if read_states else {}
    expected = [(o.uri, o.generation) for o in OBJECTS if states.get((o.uri, o.generation)) not in done]
    assert_that(kept | beam.Map(lambda o: (o.uri, o.generation)), equal_to(expected))
    result = p.run()
    result.wait_until_finish()
    counters = {}
    for name in ('files_skipped_already_processed', 'files_retried'):
        found = result.metrics().query(MetricsFilter().with_name(name))['counters']
        counters[name] = sum(c.committed for c in found)
    return expected, counters


def already_done():
    return {('/in/a.wav', '1'): RESULT, ('/in/gone.wav', '3'): RESULT, ('/in/b.wav', '1'): PERMANENT_ERROR,
            ('/in/c.wav', '1'): RETRYABLE_ERROR}


def test_results_and_permanent_errors_are_skipped_and_retryable_errors_retried():
    kept, counters = run_skip(already_done)
    assert kept == [('/in/a.wav', '2'), ('/in/c.wav', '1'), ('/in/d.wav', '1')]
    assert counters == {'files_skipped_already_processed': 2, 'files_retried': 1}


def test_retry_failed_retries_permanent_errors_too():
    kept, counters = run_skip(already_done, frozenset({RESULT}))
    assert ('/in/b.wav', '1') in kept and ('/in/a.wav', '1') not in kept
    assert counters == {'files_skipped_already_processed': 1, 'files_retried': 2}


def test_without_a_reader_every_file_goes_on():
    assert run_skip(None)[1] == {'files_skipped_already_processed': 0, 'files_retried': 0}


def test_an_empty_table_skips_nothing():
    assert run_skip(dict)[1] == {'files_skipped_already_processed': 0, 'files_retried': 0}


def _reconcile(states, tally):
    """Runs the reconciling skip over OBJECTS with ``states``: a, c and d are kept, the verdicts are ``tally``."""
    p = TestPipeline(runner='FnApiRunner')
    skip = SkipAlreadyProcessed(states, DEFAULT_DONE, count_missing=True)
    kept = p | beam.Create(OBJECTS) | skip
    assert_that(kept | beam.Map(lambda o: (o.uri, o.generation)),
                equal_to([('/in/a.wav', '2'), ('/in/c.wav', '1'), ('/in/d.wav', '1')]), label='Kept')
    assert_that(skip.tally, equal_to(tally), label='Tally')
    result = p.run()
    result.wait_until_finish()
    return result


def test_reconciling_counts_the_objects_with_no_row_and_tallies_every_verdict():
    from transforms.dedupe import DONE, MISSING, RETRIED, tally_line

    result = _reconcile(already_done, [DONE, MISSING, DONE, RETRIED, MISSING])
    found = result.metrics().query(MetricsFilter().with_name('files_reconciled'))['counters']
    assert sum(c.committed for c in found) == 2   # a.wav generation 2 and d.wav: no row at all
    assert tally_line('gs://b/**', {MISSING: 2, RETRIED: 1, DONE: 2}) == (
        'Reconcile: 2 of 5 audio objects under gs://b/** had no row (processed by this run); '
        '1 had only retryable errors (retried); 2 were done.')


def test_a_result_without_all_its_events_is_processed_again_and_said_so():
    """A crash between BigQuery's result insert and its events' insert (results.tables.RESULT_WITHOUT_EVENTS)."""
    from results.tables import RESULT_WITHOUT_EVENTS
    from transforms.dedupe import DONE, MISSING, NO_EVENTS, RETRIED, tally_line

    def states():
        return {**already_done(), ('/in/d.wav', '1'): RESULT_WITHOUT_EVENTS}

    result = _reconcile(states, [DONE, MISSING, DONE, RETRIED, NO_EVENTS])
    counted = {name: sum(c.committed for c in result.metrics().query(MetricsFilter().with_name(name))['counters'])
               for name in ('files_reconciled', 'files_missing_events', 'files_retried')}
    assert counted == {'files_reconciled': 1, 'files_missing_events': 1, 'files_retried': 1}
    assert tally_line('gs://b/**', {MISSING: 1, RETRIED: 1, NO_EVENTS: 1, DONE: 2}) == (
        'Reconcile: 1 of 5 audio objects under gs://b/** had no row (processed by this run); '
        '1 had only retryable errors (retried); 1 had a result row without all its event rows (processed again); '
        '2 were done.')
