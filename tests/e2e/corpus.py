"""What the end-to-end tests upload, and how they wait for and read the rows that come back.

The audio is made here (synthetic clips in every format, broken files), never read from ../shared.
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

import numpy as np

from audio import encode, synth
from results import bigquery_store
from tests.helpers import DEMO_LABELS

T = TypeVar('T')
RATES = (8000, 16000, 22050, 44100, 48000)


def clip(index: int, seconds: float = 0.75) -> tuple[str, bytes]:
    """(extension, bytes) of a short synthetic clip; format, rate, channels and sound vary with ``index``."""
    kind = encode.ALL_KINDS[index % len(encode.ALL_KINDS)]
    rate = 24000 if kind == 'opus' else RATES[index % len(RATES)]
    samples = synth.make(DEMO_LABELS[index % len(DEMO_LABELS)], np.random.default_rng(index), seconds, rate)
    if index % 3 == 0:
        samples = np.stack([samples, samples], axis=1)
    return encode.extension(kind), encode.encode(samples, rate, kind)


def wav(seed: int, seconds: float = 0.75) -> bytes:
    samples = synth.make(DEMO_LABELS[seed % len(DEMO_LABELS)], np.random.default_rng(seed), seconds, 16000)
    return encode.encode(samples, 16000, 'wav')


def broken_files() -> dict[str, tuple[bytes, str]]:
    """Object name -> (bytes, error_type the pipeline reports), as the decode tests pin them."""
    wav = encode.encode(synth.make('tone', np.random.default_rng(99), 2.0, 16000), 16000, 'wav')
    mp3 = encode.encode(synth.make('tone', np.random.default_rng(98), 2.0, 16000), 16000, 'mp3')
    return {
        'broken/empty.wav': (b'', 'EmptyFile'),
        'broken/zero length.flac': (b'', 'EmptyFile'),
        'broken/truncated.wav': (wav[:len(wav) // 3], 'Truncated'),
        'broken/cut.mp3': (mp3[:300], 'Corrupt'),
        'broken/fake.ogg': (b'\x00\x01garbage' * 100, 'NotAudio'),
    }


@dataclass
class Expected:
    """Object versions uploaded and the row each must get: (uri, generation) -> error_type, or None for a result."""
    outcomes: dict[tuple[str, str], str | None] = field(default_factory=dict)

    def result(self, uri: str, generation: str) -> None:
        self.outcomes[(uri, str(generation))] = None

    def error(self, uri: str, generation: str, error_type: str) -> None:
        self.outcomes[(uri, str(generation))] = error_type

    @property
    def results(self) -> set[tuple[str, str]]:
        return {k for k, v in self.outcomes.items() if v is None}

    @property
    def errors(self) -> dict[tuple[str, str], str]:
        return {k: v for k, v in self.outcomes.items() if v is not None}


@dataclass
class Rows:
    """Every row of the result and error tables, counted per (audio_file, generation)."""
    results: list[dict]
    errors: list[dict]

    @classmethod
    def read(cls, output_table: str, error_table: str) -> 'Rows':
        return cls(bigquery_store.read_rows(output_table), bigquery_store.read_rows(error_table))

    @staticmethod
    def _keys(rows: list[dict]) -> collections.Counter:
        return collections.Counter((r['audio_file'], r['generation']) for r in rows)

    @property
    def result_keys(self) -> collections.Counter:
        return self._keys(self.results)

    @property
    def error_keys(self) -> collections.Counter:
        return self._keys(self.errors)

    @property
    def totals(self) -> tuple[int, int]:
        return len(self.results), len(self.errors)

    def accounts_for(self, keys) -> bool:
        seen = set(self.result_keys) | set(self.error_keys)
        return all(k in seen for k in keys)


def wait_for(read: Callable[[], T], done: Callable[[T], bool], timeout: float, what: str,
             interval: float = 2.0) -> T:
    """Polls ``read()`` until ``done(value)``; fails the test after ``timeout`` seconds with the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {timeout:.0f} s waiting for {what}; last value: {value!r:.3000}')
        time.sleep(interval)


def settle(read: Callable[[], T], quiet_polls: int = 4, interval: float = 2.0, timeout: float = 60.0) -> T:
    """Reads until ``quiet_polls`` reads in a row return the same value: late duplicates would show up here."""
    last, same = read(), 0
    deadline = time.monotonic() + timeout
    while same < quiet_polls and time.monotonic() < deadline:
        time.sleep(interval)
        value = read()
        same = same + 1 if value == last else 0
        last = value
    return last


def pipeline_log_tail(stack, chars: int = 4000) -> str:
    from stack.processes import log_tail
    service = stack.services.get('pipeline')
    return log_tail(service.log, chars) if service else ''


WAIT_S = 300


def assert_events_match_their_rows(output_table: str, results: list[dict]) -> int:
    """Each result row's ``event_count`` equals its event rows in ``<output_table>_events`` (same file, generation
    and processed_at), and there are no others; returns how many event rows there are."""
    from results.tables import default_events_table

    events = bigquery_store.read_rows(default_events_table(output_table))
    per_row = collections.Counter((e['audio_file'], e['generation'], e['processed_at']) for e in events)
    for row in results:
        assert row['event_count'] is not None, row
        assert per_row.pop((row['audio_file'], row['generation'], row['processed_at']), 0) == row['event_count'], row
    assert not per_row, f'event rows without their result row: {per_row}'
    for event in events:
        assert 0 <= event['start_seconds'] < event['end_seconds'] and event['label'] in DEMO_LABELS
    return len(events)


def _results_without_events(stack, keys) -> set:
    from results.tables import RESULT_WITHOUT_EVENTS

    states = bigquery_store.key_states(stack.config.output_table, stack.config.error_table)
    return {key for key in keys if states.get(key) == RESULT_WITHOUT_EVENTS}


def stack_rows(stack) -> Rows:
    """The result and error rows in the stack's BigQuery emulator."""
    return Rows.read(stack.config.output_table, stack.config.error_table)


def wait_accounted(stack, keys, what: str) -> Rows:
    """Waits (bounded) until every key has its row, a result with all its events (BigQuery gets them in separate
    inserts; a result whose events are still on their way is not yet done); on timeout the error carries the
    pipeline's log."""
    def done(rows: Rows) -> bool:
        return rows.accounts_for(keys) and not _results_without_events(stack, keys)

    try:
        return wait_for(lambda: stack_rows(stack), done, WAIT_S, what)
    except AssertionError as e:
        raise AssertionError(f'{e}\n--- pipeline log ---\n{pipeline_log_tail(stack)}') from None
