"""Thresholds from reviews: a logistic fit per label recovers a known precision curve."""
import json
import math

import numpy as np
import pytest

from results.thresholds import (LabelFit, fit_labels, parse_label_thresholds, thresholds_document)

# The true curve of label "chirp": P(correct | c) = sigmoid(-10 + 16 c).
INTERCEPT, SLOPE = -10.0, 16.0


def true_threshold(precision):
    return (math.log(precision / (1 - precision)) - INTERCEPT) / SLOPE


def synthetic_reviews(label, n, seed):
    rng = np.random.default_rng(seed)
    confidence = rng.uniform(0.3, 1.0, n)
    correct = rng.uniform(size=n) < 1 / (1 + np.exp(-(INTERCEPT + SLOPE * confidence)))
    return [{'label': label, 'confidence': float(c), 'verdict': 'correct' if ok else 'wrong'}
            for c, ok in zip(confidence, correct)]


def test_fit_recovers_the_thresholds_of_a_known_precision_curve_within_0_05():
    fits, not_fitted = fit_labels(synthetic_reviews('chirp', 1500, seed=3))
    assert not not_fitted
    for precision in (0.9, 0.95, 0.99):
        assert fits['chirp'].threshold(precision) == pytest.approx(true_threshold(precision), abs=0.05)


def test_a_label_needs_enough_reviews_of_both_kinds():
    reviews = synthetic_reviews('chirp', 400, seed=1)
    few_wrong = [r for r in reviews if r['verdict'] == 'correct'] + [r for r in reviews if r['verdict'] == 'wrong'][:9]
    fits, not_fitted = fit_labels(few_wrong + synthetic_reviews('hum', 60, seed=2))
    assert 'chirp' not in fits and '9 wrong' in not_fitted['chirp']
    assert 'hum' in fits
    fits, _ = fit_labels(few_wrong, min_correct=10, min_wrong=9)
    assert 'chirp' in fits


def test_thresholds_outside_the_curve():
    never = LabelFit('x', intercept=0.0, slope=1.0, correct=10, wrong=10)   # P(correct | 1) = 0.73
    always = LabelFit('y', intercept=5.0, slope=1.0, correct=10, wrong=10)  # P(correct | 0) = 0.993
    assert never.threshold(0.9) is None
    assert always.threshold(0.99) == 0.0
    document = thresholds_document({'x': never, 'y': always}, {'z': 'too few'}, precision=0.9)
    assert document['min_confidence'] == {'y': 0.0}
    assert set(document['not_fitted']) == {'x', 'z'}
    assert document['labels']['x']['thresholds'] == {'0.9': None, '0.95': None, '0.99': None}


def test_the_pipeline_reads_min_confidence_or_a_plain_mapping():
    fits, not_fitted = fit_labels(synthetic_reviews('chirp', 300, seed=4))
    document = thresholds_document(fits, not_fitted, precision=0.9)
    assert parse_label_thresholds(json.dumps(document)) == {'chirp': document['min_confidence']['chirp']}
    assert parse_label_thresholds('{"a": 0.7, "b": 1}') == {'a': 0.7, 'b': 1.0}
    for bad in ('[1]', '{"a": 2}', '{"a": "high"}', 'nope'):
        with pytest.raises(ValueError):
            parse_label_thresholds(bad)


def test_the_command_fits_the_reviews_of_a_results_file_and_writes_what_the_pipeline_reads(tmp_path, capsys):
    from results import reviews
    from results.store import open_store
    from results.thresholds import main

    db = str(tmp_path / 'results.db')
    store = open_store(db)
    for i, r in enumerate(synthetic_reviews('chirp', 200, seed=5) + synthetic_reviews('hum', 6, seed=6)):
        detection = {'audio_file': f'/a/{i}.wav', 'generation': '1', 'start_seconds': 0.0, 'end_seconds': 1.0,
                     'label': r['label'], 'confidence': r['confidence'], 'model_version': 'v1'}
        reviews.record(store, reviews.review_row(detection, r['verdict'], 'test'))
    out = tmp_path / 'thresholds.json'
    assert main(['--results', db, '--out', str(out), '--precision', '0.9']) == 0
    document = json.loads(out.read_text())
    assert set(document['min_confidence']) == {'chirp'} and 'hum' in document['not_fitted']
    assert document['min_confidence']['chirp'] == pytest.approx(true_threshold(0.9), abs=0.05)
    assert parse_label_thresholds(out.read_text()) == document['min_confidence']
    assert 'chirp: ' in capsys.readouterr().out
