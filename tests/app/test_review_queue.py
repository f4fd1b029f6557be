"""The review queue's order and query (app/review_queue.py), on the sample results' real SQLite file."""
from __future__ import annotations

import collections

from app import review_queue
from app.backends import DIALECTS
from app.review_queue import EVEN, IN_ORDER, QueueSpec
from results.store import open_store
from tests.app import sample_results


def rows_with(confidences):
    return [{'audio_file': f'/a/{i}.wav', 'generation': '1', 'start_seconds': float(i), 'end_seconds': i + 1.0,
             'label': 'x', 'confidence': c} for i, c in enumerate(confidences)]


def test_even_mode_takes_one_detection_from_each_confidence_bin_in_turn():
    # Mostly confident detections, as a detector gives them: 90 above 0.9, 10 spread below.
    confidences = [0.9 + 0.001 * i for i in range(90)] + [0.05 + 0.09 * i for i in range(10)]
    queue = review_queue.order_queue(rows_with(confidences), QueueSpec(mode=EVEN))
    first_ten = [review_queue.confidence_bin(r['confidence'], 0.0, 1.0) for r in queue[:10]]
    assert sorted(first_ten) == list(range(10))             # every bin once before any bin twice
    assert len(queue) == 100 and len({id(r) for r in queue}) == 100
    assert review_queue.order_queue(rows_with(confidences), QueueSpec(mode=EVEN)) == queue   # fixed order
    in_order = review_queue.order_queue(rows_with(confidences), QueueSpec(mode=IN_ORDER))
    assert [r['audio_file'] for r in in_order] == sorted(r['audio_file'] for r in queue)


def test_the_queue_holds_the_current_results_detections_of_the_label_and_range(tmp_path):
    sample = sample_results.build(str(tmp_path), files=6, errors=0)
    store = open_store(sample.db_path)
    every = [e for events in sample.events.values() for e in events]

    def run(spec):
        query = review_queue.detections_query(DIALECTS[store.dialect], spec)
        return store.query(query.sql, query.params)

    assert len(run(QueueSpec())) == len(every)
    label = every[0]['label']
    found = run(QueueSpec(label=label, low=0.9, high=1.0))
    assert collections.Counter(r['label'] for r in found) == {label: sum(
        1 for e in every if e['label'] == label and e['confidence'] >= 0.9)}


def test_a_clip_is_the_detection_with_context_inside_the_file():
    assert review_queue.clip_span(0.5, 2.0, 2.5, 1.0) == (0.0, 2.5)
    assert review_queue.clip_span(3.0, 4.0, None, 1.0) == (2.0, 5.0)
