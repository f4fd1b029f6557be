"""The page's view state survives a trip through its URL; a hand-edited URL cannot break the page."""
import datetime as dt

from app.urlstate import ViewState, from_params, to_params


def as_lists(params: dict) -> dict:
    return {k: v if isinstance(v, list) else [v] for k, v in params.items()}


def test_round_trip():
    state = ViewState(labels=('hum', 'chirp'), confidence=(0.2, 0.9), time_range='Between dates',
                      dates=(dt.date(2026, 3, 1), dt.date(2026, 3, 2)), name='park', event_label='hum', page=3,
                      page_size=50, inspect=('/in/a b#1.wav', '17'), refresh=5)
    assert from_params(as_lists(to_params(state, 20, 0))) == state


def test_defaults_give_a_clean_url():
    assert to_params(ViewState(), 20, 0) == {}
    assert to_params(ViewState(page_size=20, refresh=0), 20, 0) == {}


def test_bad_values_are_ignored():
    state = from_params({'conf': ['x-y'], 'time': ['forever'], 'page': ['-2'], 'size': ['many'], 'file': ['a'],
                         'from': ['2026-13-01'], 'refresh': ['soon']})
    assert state == ViewState()
