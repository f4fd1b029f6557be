"""The failure contract: what is the file's fault, what is the moment's, and how long a moment is retried."""
from __future__ import annotations

import errno
import sqlite3

import pytest
from google.api_core import exceptions as api_exceptions

from audio.decode import DecodeError
from audio.records import AudioObject
from audio.spill import SpillError
from transforms.failures import (InputRejected, ObjectGone, Retrier, StageFailure, as_input_failure,
                                 as_read_failure, error_type, is_permanent)
from cloud.notification import MalformedNotification

OBJ = AudioObject(uri='gs://b/a.wav', name='a.wav', generation='7')


@pytest.mark.parametrize('error', [
    DecodeError('NotAudio', 'x'), DecodeError('Truncated', 'x'), DecodeError('TooLong', 'x'),
    ObjectGone('gone'), MalformedNotification('bad json'), InputRejected(ValueError('bad header')),
    sqlite3.IntegrityError('NOT NULL constraint failed'),
])
def test_bad_input_is_permanent(error):
    assert is_permanent(error)


@pytest.mark.parametrize('error', [
    api_exceptions.ServiceUnavailable('503'), api_exceptions.TooManyRequests('429'),
    api_exceptions.InternalServerError('500'), api_exceptions.GatewayTimeout('504'),
    api_exceptions.RetryError('Timeout of 120.0s exceeded', ConnectionError('refused')),
    ConnectionError('refused'), TimeoutError('timed out'), sqlite3.OperationalError('database is locked'),
    OSError(errno.ENOSPC, 'No space left on device'), MemoryError(), RuntimeError('never seen before'),
    api_exceptions.Forbidden('403: a missing role is fixed by the operator, then replay retries'),
])
def test_bad_moments_and_unknown_errors_are_transient(error):
    assert not is_permanent(error)


def test_a_404_on_the_input_is_object_gone_and_elsewhere_stays_transient():
    gone = as_read_failure(api_exceptions.NotFound('No such object: b/a.wav#7'), OBJ)
    assert isinstance(gone, ObjectGone) and 'generation 7' in str(gone) and error_type(gone) == 'ObjectGone'
    assert isinstance(as_read_failure(FileNotFoundError('/x/a.wav'), OBJ), ObjectGone)
    assert not is_permanent(api_exceptions.NotFound('spectrogram bucket missing'))  # not reading the input
    unavailable = api_exceptions.ServiceUnavailable('503')
    assert as_read_failure(unavailable, OBJ) is unavailable


def test_a_pure_steps_unknown_error_is_the_inputs_but_running_out_of_memory_or_disk_is_not():
    rejected = as_input_failure(ValueError('header says -1 channels'))
    assert is_permanent(rejected) and error_type(rejected) == 'ValueError'
    assert as_input_failure(MemoryError()).__class__ is MemoryError
    full_disk = SpillError('cannot write the decoded samples to local disk: No space left on device')
    assert as_input_failure(full_disk) is full_disk and not is_permanent(full_disk)   # audio/spill.py
    decode_error = DecodeError('Corrupt', 'x')
    assert as_input_failure(decode_error) is decode_error and error_type(decode_error) == 'Corrupt'


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _calls(retrier: Retrier, fn, clock: FakeClock, rng=lambda: 1.0, **kwargs):
    return retrier.call(fn, sleep=clock.sleep, clock=lambda: clock.now, rng=rng, **kwargs)


def test_a_permanent_error_stops_at_the_first_try_without_waiting():
    clock = FakeClock()

    def bad():
        raise DecodeError('NotAudio', 'not audio')
    with pytest.raises(StageFailure) as caught:
        _calls(Retrier(600), bad, clock)
    failure = caught.value
    assert (failure.permanent, failure.attempts, clock.sleeps) == (True, 1, [])
    row = failure.failed_audio(OBJ, 'decode')
    assert (row.error_type, row.retryable, row.attempts, row.message) == ('NotAudio', False, 1, 'not audio')


def test_a_transient_error_is_retried_with_growing_waits_until_it_passes():
    clock = FakeClock()
    outcomes = [ConnectionError('down')] * 5 + ['ok']

    def flaky():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    retried = []
    value, attempts = _calls(Retrier(600, initial_s=1, maximum_s=8), flaky, clock,
                             on_retry=lambda e, wait: retried.append(type(e).__name__))
    assert (value, attempts) == ('ok', 6)
    assert clock.sleeps == [1, 2, 4, 8, 8]  # exponential, capped (rng=1: the top of each jitter range)
    assert retried == ['ConnectionError'] * 5


def test_jitter_spreads_the_waits_below_the_bound():
    clock = FakeClock()
    outcomes = [TimeoutError()] * 3 + ['ok']

    def flaky():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    _calls(Retrier(600, initial_s=2, maximum_s=30), flaky, clock, rng=lambda: 0.25)
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_a_moment_that_outlasts_the_budget_becomes_a_retryable_failure_and_the_budget_bounds_the_waits():
    clock = FakeClock()

    def down():
        clock.now += 0.5  # each attempt takes a while too
        raise api_exceptions.ServiceUnavailable('storage is down')
    with pytest.raises(StageFailure) as caught:
        _calls(Retrier(20, initial_s=1, maximum_s=8), down, clock)
    failure = caught.value
    assert not failure.permanent and failure.attempts > 3
    assert clock.now == pytest.approx(20.5)  # never waits past the budget; the last attempt ends just after it
    row = failure.failed_audio(OBJ, 'read')
    assert (row.stage, row.error_type, row.retryable, row.attempts) == ('read', 'ServiceUnavailable', True,
                                                                        failure.attempts)
    assert 'batch replay retries' in row.message and 'storage is down' in row.message


def test_no_budget_means_one_try():
    clock = FakeClock()

    def down():
        raise ConnectionError('down')
    with pytest.raises(StageFailure) as caught:
        _calls(Retrier(0), down, clock)
    assert (caught.value.attempts, caught.value.permanent, clock.sleeps) == (1, False, [])
    assert 'outlasted 1 attempt over 0 s' in caught.value.failed_audio(OBJ, 'read').message   # not "1 attempts"


def test_a_permanent_error_after_transient_ones_stops_there():
    clock = FakeClock()
    outcomes = [ConnectionError('down'), api_exceptions.NotFound('deleted meanwhile')]

    def read():
        raise outcomes.pop(0)
    with pytest.raises(StageFailure) as caught:
        _calls(Retrier(600), read, clock, classify=lambda e: as_read_failure(e, OBJ))
    assert caught.value.permanent and isinstance(caught.value.error, ObjectGone) and caught.value.attempts == 2
