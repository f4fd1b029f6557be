"""The one failure contract of every stage: a bad file or a bad moment.

Every stage returns ``StageOutputs(ok, failed)``; ``failed`` holds ``FailedAudio``
records that become error rows. What goes into ``failed`` is decided here:

* **permanent** -- the input itself is bad, and trying again cannot help: every
  decode error (EmptyFile, NotAudio, Truncated, Corrupt, NoAudio, TooLong),
  ``ObjectGone`` (the notified generation was deleted or overwritten: 404),
  a malformed notification, a row BigQuery refuses as invalid, a window a
  Vertex AI endpoint refuses on its own (``RefusedByModel``: the handler has
  narrowed the refusal down to that file, model/vertex_handler.py). One error row,
  ``retryable = false``, on the first try, with no delay.
* **transient** -- a bad moment: 5xx, 429, timeouts, connection errors,
  google-api-core ``RetryError`` (a client's own retries ran out), SQLite
  busy/locked, a full disk, and *anything not known to be permanent*. The stage
  retries with exponential backoff and jitter for ``--transient_retry_seconds``
  (``Retrier``); if the moment outlasts that, the file gets an error row with
  ``retryable = true``, which a batch replay retries (docs/reliability.md).

Stages ask ``is_permanent`` / ``Retrier.call`` and never match exception
messages themselves.
"""
from __future__ import annotations

import logging
import random
import sqlite3
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional, TypeVar

import apache_beam as beam

from audio.decode import DecodeError
from audio.records import AudioObject, FailedAudio
from audio.spill import SpillError
from cloud.notification import MalformedNotification

FAILED = 'failed'
_LOG = logging.getLogger(__name__)
DEFAULT_TRANSIENT_RETRY_SECONDS = 600.0
T = TypeVar('T')


class StageOutputs(NamedTuple):
    ok: beam.PCollection
    failed: beam.PCollection


class PermanentError(Exception):
    """Raised by this project's code for a bad input; ``error_type`` goes into the error row."""
    error_type = 'BadInput'


class ObjectGone(PermanentError):
    """The object (at the requested generation) no longer exists: deleted or overwritten before it was read."""
    error_type = 'ObjectGone'


# Reasons in BigQuery's per-row insert errors that say the row itself is refused (Beam does not retry these).
BIGQUERY_PERMANENT_REASONS = frozenset({'invalid', 'invalidQuery', 'notImplemented', 'Bad Request'})


def _is_not_found(error: BaseException) -> bool:
    from google.api_core import exceptions as api_exceptions
    return isinstance(error, (api_exceptions.NotFound, FileNotFoundError))


def is_permanent(error: BaseException) -> bool:
    """True when ``error`` says the input (or the one row) is bad; False (transient) otherwise, including unknown.

    ``sqlite3.IntegrityError`` is a row the table's constraints refuse, SQLite's "invalid row". Everything
    else SQLite raises (``database is locked``, ``disk I/O error``, a full disk) is a moment's trouble.
    """
    return isinstance(error, (PermanentError, DecodeError, MalformedNotification, sqlite3.IntegrityError))


def as_read_failure(error: BaseException, obj: AudioObject) -> BaseException:
    """An error from reading the input object: a 404 (or a missing local file) at this generation is ObjectGone.

    Only where the stage reads *the input* is a 404 the input's fault; a missing spectrogram bucket is not.
    """
    if isinstance(error, ObjectGone) or not _is_not_found(error):
        return error
    at = f' generation {obj.generation}' if obj.generation else ''
    gone = ObjectGone(f'{obj.uri}{at} no longer exists (deleted or overwritten before it was read)')
    gone.__cause__ = error
    return gone


class InputRejected(PermanentError):
    """A pure step over the input (decoding bytes that were read without error, rendering decoded samples)
    raised something other than its own error types. The same bytes fail the same way every time, so this
    is the input's failure, not the moment's; ``error_type`` keeps the original exception's name."""

    def __init__(self, error: BaseException):
        super().__init__(str(error) or type(error).__name__)
        self.error_type = type(error).__name__


def as_input_failure(error: BaseException) -> BaseException:
    """What a pure step's exception means: the input's fault, except running out of memory or of local disk
    for a long file's samples (``SpillError``): the worker's, a moment's trouble."""
    if is_permanent(error) or isinstance(error, (MemoryError, SpillError)):
        return error
    rejected = InputRejected(error)
    rejected.__cause__ = error
    return rejected


def error_type(error: BaseException) -> str:
    if isinstance(error, DecodeError):
        return error.error_type
    if isinstance(error, PermanentError):
        return error.error_type
    return type(error).__name__


def attempts_text(attempts: int) -> str:
    """"1 attempt", "12 attempts"."""
    return f'{attempts} attempt' + ('' if attempts == 1 else 's')


class StageFailure(Exception):
    """What ``Retrier.call`` raises when it stops: the last error, how often it tried, whether it is permanent."""

    def __init__(self, error: BaseException, attempts: int, seconds: float, permanent: bool):
        super().__init__(str(error))
        self.error = error
        self.attempts = attempts
        self.seconds = seconds
        self.permanent = permanent

    def failed_audio(self, source: AudioObject, stage: str) -> FailedAudio:
        message = str(self.error) or type(self.error).__name__
        if not self.permanent:
            message = (f'transient failure outlasted {attempts_text(self.attempts)} over {self.seconds:.0f} s '
                       f'(--transient_retry_seconds); a batch replay retries this file: {message}')
            _LOG.warning('%s of %s: %s', stage, source.uri, message[:500])
        return FailedAudio(source, stage, error_type(self.error), message, retryable=not self.permanent,
                           attempts=self.attempts)


@dataclass(frozen=True)
class Retrier:
    """Calls a function until it succeeds, fails permanently, or transient failures outlast ``deadline_s``.

    Waits grow exponentially from ``initial_s`` up to ``maximum_s`` with full jitter (a random wait
    between 0 and the bound), so many workers hitting the same outage do not retry in lockstep. One
    attempt may itself take as long as a client library's own retry deadline (Cloud Storage: 120 s),
    so the worst case is ``deadline_s`` plus one such attempt.
    """
    deadline_s: float = DEFAULT_TRANSIENT_RETRY_SECONDS
    initial_s: float = 1.0
    maximum_s: float = 30.0
    multiplier: float = 2.0

    def call(self, fn: Callable[[], T], *, classify: Callable[[BaseException], BaseException] = lambda e: e,
             on_retry: Optional[Callable[[BaseException, float], None]] = None,
             sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
             rng: Callable[[], float] = random.random) -> tuple[T, int]:
        """(fn's value, attempts); raises ``StageFailure`` when it gives up.

        ``classify`` maps the raw error first (e.g. a 404 on the input to ObjectGone).
        """
        started = clock()
        bound = self.initial_s
        attempts = 0
        while True:
            attempts += 1
            try:
                return fn(), attempts
            except Exception as raw:  # classified below: permanent stops at once, the rest is retried
                error = classify(raw)
                elapsed = clock() - started
                if is_permanent(error):
                    raise StageFailure(error, attempts, elapsed, permanent=True) from raw
                left = self.deadline_s - elapsed
                if left <= 0:
                    raise StageFailure(error, attempts, elapsed, permanent=False) from raw
                wait = min(rng() * bound, left)
                if on_retry is not None:
                    on_retry(error, wait)
                sleep(wait)
                bound = min(bound * self.multiplier, self.maximum_s)


# Stages default to production behaviour; the graph passes one built from --transient_retry_seconds.
DEFAULT_RETRIER = Retrier()


def tagged(failure: FailedAudio):
    return beam.pvalue.TaggedOutput(FAILED, failure)
