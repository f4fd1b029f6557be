"""Events from per-window probabilities: runs, thresholds, background, timing, and chunked = whole."""
import numpy as np
import pytest

from audio.events import EventSettings, EventTracker, Timing, detect_events
from audio.records import Event

LABELS = ('a', 'b', 'background')
SETTINGS = EventSettings(min_confidence=0.5, background_label='background')
TIMING = Timing(hop_seconds=0.5, window_seconds=1.0, duration_seconds=10.0)


def probs(*tops):
    """One window per (label index, probability of that label); the rest spread evenly."""
    rows = []
    for label, p in tops:
        row = np.full(len(LABELS), (1 - p) / (len(LABELS) - 1))
        row[label] = p
        rows.append(row)
    return np.array(rows, dtype=np.float32)


def test_runs_of_a_confident_label_become_events_with_window_times_and_mean_confidence():
    p = probs((2, .9), (0, .8), (0, .6), (2, .7), (1, .9), (1, .7), (0, .9), (2, .9))
    events = detect_events(p, LABELS, TIMING, SETTINGS)
    # Windows 1-2: after window 0 ends (1.0), before window 3 starts (1.5); windows 4-5 likewise; the single
    # window 6 is the middle hop of its span [3.0, 4.0].
    assert [(e.label, e.start_seconds, e.end_seconds) for e in events] == [
        ('a', 1.0, 1.5), ('b', 2.5, 3.0), ('a', 3.25, 3.75)]
    full = detect_events(p, LABELS, Timing(0.5, 1.0, 10.0, full_spans=True), SETTINGS)
    assert [(e.start_seconds, e.end_seconds) for e in full] == [(0.5, 2.0), (2.0, 3.5), (3.0, 4.0)]
    assert events[0].confidence == pytest.approx(0.7)
    assert events[1].confidence == pytest.approx(0.8)


def test_windows_below_the_threshold_and_background_windows_split_and_end_events():
    p = probs((0, .9), (0, .4), (0, .9), (2, .99), (0, .9))
    # The first window starts at 0; an event still open at the end ends with the file.
    assert [(e.start_seconds, e.end_seconds) for e in detect_events(p, LABELS, TIMING, SETTINGS)] == [
        (0.0, 0.75), (1.25, 1.75), (2.25, 10.0)]
    assert detect_events(p, LABELS, TIMING, EventSettings(min_confidence=0.95, background_label='background')) == []
    # Without a background label, a confident background window is an event like any other.
    assert [e.label for e in detect_events(p, LABELS, TIMING, EventSettings(0.5, None))] == ['a', 'a', 'background',
                                                                                           'a']


def test_the_last_event_ends_at_the_duration_not_past_it():
    timing = Timing(hop_seconds=0.5, window_seconds=1.0, duration_seconds=1.2)
    (event,) = detect_events(probs((0, .9), (0, .9)), LABELS, timing, SETTINGS)
    assert (event.start_seconds, event.end_seconds) == (0.0, 1.2)
    (event,) = detect_events(probs((2, .9), (0, .9), (0, .9)), LABELS, Timing(0.5, 1.0, 1.6), SETTINGS)
    assert (event.start_seconds, event.end_seconds) == (1.0, 1.6)
    # Windows that do not overlap (hop longer than the window) keep their whole span.
    assert Timing(2.0, 1.0, 10.0).span(1, 1) == (2.0, 3.0)
    # A short file is one padded window.
    (event,) = detect_events(probs((1, .9)), LABELS, Timing(0.5, 1.0, 0.3), SETTINGS)
    assert event == Event(0.0, 0.3, 'b', pytest.approx(0.9))


@pytest.mark.parametrize('chunk', [1, 2, 3, 7, 4096])
def test_chunked_detection_equals_detection_over_the_whole_array(chunk):
    rng = np.random.default_rng(0)
    p = rng.dirichlet([0.3, 0.3, 0.3], size=500).astype(np.float32)
    whole = detect_events(p, LABELS, Timing(0.5, 1.0, 300.0), SETTINGS, chunk_windows=len(p))
    assert len(whole) > 20
    assert detect_events(p, LABELS, Timing(0.5, 1.0, 300.0), SETTINGS, chunk_windows=chunk) == whole
    assert all(a.end_seconds <= b.start_seconds for a, b in zip(whole, whole[1:])), 'events never overlap'
    assert all(e.end_seconds > e.start_seconds for e in whole)


def test_an_event_open_across_chunks_is_reported_once_when_it_ends():
    tracker = EventTracker(LABELS, TIMING, SETTINGS)
    assert tracker.feed(probs((0, .9), (0, .9))) == []
    assert tracker.feed(probs((0, .7))) == []
    (event,) = tracker.feed(probs((2, .9)))
    assert (event.start_seconds, event.end_seconds, event.confidence) == (0.0, 1.5, pytest.approx(5 / 6, rel=1e-6))
    assert tracker.finish() == []


def test_wrong_shaped_probabilities_are_refused():
    with pytest.raises(ValueError):
        EventTracker(LABELS, TIMING, SETTINGS).feed(np.zeros((3, 2)))


MULTI = ('a', 'b', 'c')
BIRDNET_TIMING = Timing(hop_seconds=3.0, window_seconds=3.0, duration_seconds=10.5)


def multi(*rows):
    return np.array(rows, dtype=np.float32)


def test_multi_label_every_label_over_the_threshold_is_an_event_of_its_window():
    p = multi((.9, .6, .1), (.2, .7, .5), (.1, .1, .1), (.8, .0, .0))
    settings = EventSettings(min_confidence=0.5, multi_label=True, merge_consecutive=1)
    events = detect_events(p, MULTI, BIRDNET_TIMING, settings)
    # Windows as they are (the last one ends 1.5 s after the file, as BirdNET reports it); per window, the most
    # confident label first.
    assert [(e.start_seconds, e.end_seconds, e.label, round(e.confidence, 3)) for e in events] == [
        (0.0, 3.0, 'a', 0.9), (0.0, 3.0, 'b', 0.6), (3.0, 6.0, 'b', 0.7), (3.0, 6.0, 'c', 0.5), (9.0, 12.0, 'a', 0.8)]


def test_merge_consecutive_joins_at_most_n_windows_with_the_mean_of_the_top_three():
    p = multi(*[(s, 0, 0) for s in (.6, .9, .7, .8, .5, .95, .1, .6)])
    settings = EventSettings(min_confidence=0.5, multi_label=True, merge_consecutive=4)
    events = detect_events(p, MULTI, Timing(3.0, 3.0, 24.0), settings)
    assert [(e.start_seconds, e.end_seconds) for e in events] == [(0.0, 12.0), (12.0, 18.0), (21.0, 24.0)]
    assert [round(e.confidence, 4) for e in events] == [round((.9 + .8 + .7) / 3, 4), round((.5 + .95) / 2, 4), .6]
    # 0: whole runs, the mean over the run (the trained models' rule), for a multi-label model too.
    whole = detect_events(p, MULTI, Timing(3.0, 3.0, 24.0), EventSettings(0.5, multi_label=True))
    assert [(e.start_seconds, e.end_seconds, round(e.confidence, 4)) for e in whole] == [
        (0.0, 18.0, round(np.mean([.6, .9, .7, .8, .5, .95]), 4)), (21.0, 24.0, .6)]


def test_a_species_list_and_the_background_label_are_never_events_and_chunks_change_nothing():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, (500, 3)).astype(np.float32)
    labels = ('a', 'background', 'c')
    settings = EventSettings(0.7, background_label='background', multi_label=True, merge_consecutive=2,
                             allowed_labels=frozenset({'a'}))
    events = detect_events(p, labels, Timing(1.0, 1.0, 500.0), settings)
    assert events and {e.label for e in events} == {'a'}
    assert detect_events(p, labels, Timing(1.0, 1.0, 500.0), settings, chunk_windows=7) == events
    # A single-label model keeps its top-label runs, restricted to the list.
    single = EventSettings(0.5, background_label='background', allowed_labels=frozenset({'b'}))
    assert [e.label for e in detect_events(probs((0, .9), (1, .9), (1, .8)), LABELS, TIMING, single)] == ['b']


def test_a_label_minimum_replaces_the_global_one_for_that_label_only():
    p = probs((0, .6), (2, .9), (1, .6), (2, .9), (0, .8))
    strict_a = EventSettings(min_confidence=0.5, background_label='background', label_min_confidence=(('a', .7),))
    assert [(e.label, e.confidence) for e in detect_events(p, LABELS, TIMING, strict_a)] == [
        ('b', pytest.approx(.6)), ('a', pytest.approx(.8))]
    assert len(detect_events(p, LABELS, TIMING, SETTINGS)) == 3
