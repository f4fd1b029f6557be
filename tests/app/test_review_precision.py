"""The Review page's precision panel (app/review.py), run by Streamlit's own test runner: each label's counts,
its thresholds once it has enough reviews of both kinds, and the thresholds file to download."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest


def panel():
    import math

    import numpy as np

    from app.review import precision_panel

    rng = np.random.default_rng(0)
    rows = []
    for _ in range(300):   # hum: P(correct | c) = sigmoid(-10 + 16 c); tone: too few wrong ones
        c = float(rng.uniform(0.3, 1))
        ok = rng.uniform() < 1 / (1 + math.exp(-(-10 + 16 * c)))
        rows.append({'label': 'hum', 'confidence': c, 'verdict': 'correct' if ok else 'wrong'})
    rows += [{'label': 'tone', 'confidence': 0.9, 'verdict': 'correct'}] * 12
    rows += [{'label': 'tone', 'confidence': 0.4, 'verdict': 'wrong'}] * 3
    precision_panel(rows, '')


def test_thresholds_per_label_and_why_a_label_has_none():
    at = AppTest.from_function(panel).run(timeout=60)
    assert not at.exception
    table = at.dataframe[0].value.set_index('Label')
    assert (table.loc['tone', 'Correct'], table.loc['tone', 'Wrong']) == (12, 3)
    assert 'needs at least 10 correct and 10 wrong' in table.loc['tone', 'Note']
    # The true curve reaches 90 % at 0.762 and 95 % at 0.809.
    assert abs(float(table.loc['hum', '90% precision at']) - 0.762) < 0.05
    assert abs(float(table.loc['hum', '95% precision at']) - 0.809) < 0.05
    assert table.loc['tone', '90% precision at'] == '–'
