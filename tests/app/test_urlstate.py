"""The page's view state survives a trip through its URL; a hand-edited URL cannot break the page."""
import datetime as dt

from app.urlstate import ViewState, from_params, no_failures_text, to_params


def as_lists(params: dict) -> dict:
    return {k: v if isinstance(v, list) else [v] for k, v in params.items()}


def test_round_trip():
    state = ViewState(labels=('hum', 'chirp'), confidence=(0.2, 0.9), time_range='Between dates',
                      dates=(dt.date(2026, 3, 1), dt.date(2026, 3, 2)), name='park', event_label='hum', page=3,
                      page_size=50, inspect=('/in/a b#1.wav', '17'), refresh=5, span=(720.0, 780.5))
    assert from_params(as_lists(to_params(state, 20, 0))) == state


def test_defaults_give_a_clean_url():
    assert to_params(ViewState(), 20, 0) == {}
    assert to_params(ViewState(page_size=20, refresh=0), 20, 0) == {}


def test_bad_values_are_ignored():
    state = from_params({'conf': ['x-y'], 'time': ['forever'], 'page': ['-2'], 'size': ['many'], 'file': ['a'],
                         'from': ['2026-13-01'], 'refresh': ['soon']})
    assert state == ViewState()


def test_a_range_is_kept_only_with_its_file():
    assert from_params({'t': ['720-780']}) == ViewState()
    assert from_params({'file': ['a'], 'gen': ['1'], 't': ['780-720']}).span is None
    assert from_params({'file': ['a'], 'gen': ['1'], 't': ['720-780']}).span == (720.0, 780.0)


def test_no_failures_says_what_was_filtered():
    assert no_failures_text(ViewState()) == 'No failed files.'
    assert no_failures_text(ViewState(name='park')) == 'No failed files whose name contains "park".'
    assert no_failures_text(ViewState(name='park', time_range='Last hour')) == \
        'No failed files whose name contains "park" in the last hour.'
    dates = ViewState(time_range='Between dates', dates=(dt.date(2026, 3, 1), dt.date(2026, 3, 2)))
    assert no_failures_text(dates) == 'No failed files between 2026-03-01 and 2026-03-02 (UTC).'
    assert no_failures_text(ViewState(labels=('hum',))) == \
        'No failed files. Label, confidence and event filters do not apply to failures.'
