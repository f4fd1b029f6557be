"""The reviews table (results/reviews.py) in both stores: one verdict per detection, Undo, and pipeline writes
that never touch it. SQLite here; BigQuery on the real emulator (marked e2e)."""
from __future__ import annotations

import pytest

from results import reviews, schema, sqlite_store
from results.store import open_store

DETECTION = {'audio_file': '/data/dawn.wav', 'generation': '17', 'start_seconds': 1.25, 'end_seconds': 2.5,
             'label': 'chirp', 'confidence': 0.81, 'model_version': 'v1'}


def detection(i: int) -> dict:
    return {**DETECTION, 'start_seconds': 1.25 + i, 'end_seconds': 2.5 + i, 'confidence': 0.5 + i / 100}


def test_review_again_replaces_the_verdict_and_undo_brings_the_earlier_one_back(tmp_path):
    store = open_store(str(tmp_path / 'r.db'))
    first = reviews.review_row(DETECTION, reviews.CORRECT, 'ann', reviewed_at=1_800_000_000)
    assert reviews.record(store, first) is None
    second = reviews.review_row(DETECTION, reviews.WRONG, 'bob', reviewed_at=1_800_000_060)
    assert reviews.record(store, second) == first
    assert reviews.current_reviews(store) == [second]
    reviews.undo(store, second, first)
    assert reviews.current_reviews(store) == [first]
    reviews.undo(store, first, None)
    assert reviews.current_reviews(store) == []


def test_the_reviewer_defaults_to_the_os_user_and_verdicts_are_checked():
    row = reviews.review_row(DETECTION, reviews.CORRECT)
    assert row['reviewer'] == reviews.default_reviewer() and row['reviewed_at'].endswith('Z')
    assert list(row) == schema.TABLES[schema.REVIEWS].columns
    with pytest.raises(ValueError):
        reviews.review_row(DETECTION, 'maybe')


def test_a_replayed_or_reprocessed_file_keeps_its_reviews(tmp_path):
    """The pipeline's result write replaces the file's result and events, never its reviews."""
    path = str(tmp_path / 'r.db')
    store = open_store(path)
    reviews.record(store, reviews.review_row(DETECTION, reviews.CORRECT, 'ann'))
    result = {'audio_file': DETECTION['audio_file'], 'generation': '17', 'spectrogram_image': None, 'label': 'chirp',
              'confidence': 0.9, 'scores': [], 'model_version': 'v2', 'event_count': 0, 'duration_seconds': 3.0,
              'sample_rate_hz': 16000, 'channels': 1, 'event_time': None,
              'processed_at': '2026-12-01T00:00:00.000000Z', schema.ROW_EVENTS_KEY: []}
    with sqlite_store.connect(path) as conn:
        sqlite_store.write_processed(conn, [result])
    assert [r['verdict'] for r in reviews.current_reviews(store)] == [reviews.CORRECT]


@pytest.mark.e2e
def test_bigquery_keeps_every_review_and_its_view_shows_the_newest_per_detection(bigquery_emulator):
    store = open_store('local-project:audio.results')
    store.ensure_tables()
    for i in range(3):
        reviews.record(store, reviews.review_row(detection(i), reviews.CORRECT, 'ann', reviewed_at=1_800_000_000 + i))
    again = reviews.review_row(detection(0), reviews.WRONG, 'bob', reviewed_at=1_800_000_100)
    previous = reviews.record(store, again)
    assert previous is not None and previous['verdict'] == reviews.CORRECT
    assert len(store.read_rows(schema.REVIEWS)) == 4     # every review is a row of its own
    current = {r['start_seconds']: r['verdict'] for r in reviews.current_reviews(store)}
    assert current == {1.25: 'wrong', 2.25: 'correct', 3.25: 'correct'}
    reviews.undo(store, again, previous)                  # the row taken back is deleted: the earlier one shows
    assert len(store.read_rows(schema.REVIEWS)) == 3
    assert {r['start_seconds']: r['verdict'] for r in reviews.current_reviews(store)}[1.25] == 'correct'
