"""Events: what was heard when, from a file's per-window probabilities.

An event is a maximal run of consecutive windows whose top label is the same,
is not the background label, and has probability at least ``min_confidence``
(or that label's own minimum, ``label_min_confidence``, e.g. thresholds learnt from reviews);
its confidence is the mean probability of its label over the run.

Its boundaries are where the sound must be: after the end of the window
before the run and before the start of the window after it (neither holds
the sound), i.e. ``window - hop`` after the start of its first window to
``window - hop`` before the end of its last one; a run too short for that
(one window when windows overlap by half) is the middle hop of its windows.
The first window of the file starts at 0 and the last ends at the duration.
A window is labelled by a sound that fills only part of it, so the windows'
full spans overstate events by most of a window on each side: on 30 spoken
digits of an unheard speaker (docs/model.md) the full spans were off by
0.55 s on average at each end, these boundaries by about a tenth of that.

Multi-label models and BirdNET's merging (``EventSettings.multi_label`` /
``merge_consecutive``): every label whose probability in a window is at
least ``min_confidence`` is detected in that window, so events of several
labels may overlap in time. ``merge_consecutive`` N > 0 joins at most N
consecutive windows of the same label into one event whose confidence is
the mean of its top 3 windows, and the event spans its windows exactly
(start of the first to end of the last, as BirdNET reports them; N = 1 is
one event per window and label, BirdNET's default). N = 0 joins whole runs
(the rule above, for either kind of model). ``allowed_labels`` (a species
list) restricts events to those labels (``LabelRunTracker``).

``EventTracker`` consumes the probabilities in window order, chunk by chunk,
and keeps only the open run between chunks: the events of an hour of audio
cost one pass over the ``[windows, labels]`` array inference already returns,
and memory for the events themselves (a handful of floats each), never a
second copy of the probabilities.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

from audio.records import Event

DEFAULT_MIN_CONFIDENCE = 0.5
CHUNK_WINDOWS = 4096
# BirdNET's merged confidence: the mean of the top this-many window scores of the merged windows.
MERGED_TOP_SCORES = 3


@dataclass(frozen=True)
class EventSettings:
    """How windows become events: the threshold, and which label (if any) means "nothing of interest".

    The pipeline passes the model contract's ``model.metadata.BACKGROUND_LABEL``.
    """
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    background_label: Optional[str] = None
    # (label, minimum) pairs that replace min_confidence for those labels (a tuple: the settings stay hashable).
    label_min_confidence: tuple[tuple[str, float], ...] = ()
    multi_label: bool = False             # every label at least its minimum, not only the window's top one
    merge_consecutive: int = 0            # 0: whole runs; N > 0: at most N windows, BirdNET's rule
    allowed_labels: Optional[frozenset[str]] = None   # a species list: only these labels are events (None: all)

    def minimum(self, label: str) -> float:
        return dict(self.label_min_confidence).get(label, self.min_confidence)

    def minimums(self, labels: Sequence[str]) -> np.ndarray:
        """Each label's minimum window probability, indexed like ``labels``."""
        own = dict(self.label_min_confidence)
        return np.array([own.get(label, self.min_confidence) for label in labels], dtype=np.float64)

    @property
    def per_label_runs(self) -> bool:
        """Whether ``LabelRunTracker`` applies (else ``EventTracker``, the top label's whole runs)."""
        return self.multi_label or self.merge_consecutive > 0


@dataclass(frozen=True)
class Timing:
    """Window ``i`` spans ``[i * hop, i * hop + window]`` seconds of a file of ``duration_seconds``."""
    hop_seconds: float
    window_seconds: float
    duration_seconds: float
    full_spans: bool = False   # start of the first window to end of the last (for comparison only)

    def span(self, first: int, last: int, last_of_file: bool = False) -> tuple[float, float]:
        """Start and end of an event made of windows ``first`` to ``last`` (see the module doc)."""
        hop = self.hop_seconds
        lead = 0.0 if self.full_spans else max(self.window_seconds - hop, 0.0)
        start = first * hop + lead
        end = last * hop + self.window_seconds - lead
        shortest = min(hop, self.window_seconds)
        if end - start < shortest:  # a run too short to narrow down: the middle hop of its windows
            middle = (first * hop + last * hop + self.window_seconds) / 2
            start, end = middle - shortest / 2, middle + shortest / 2
        if first == 0:
            start = 0.0
        if last_of_file:
            end = self.duration_seconds
        return min(max(start, 0.0), self.duration_seconds), min(end, self.duration_seconds)


class EventTracker:
    """Turns probabilities fed in window order into events; see the module doc."""

    def __init__(self, labels: Sequence[str], timing: Timing, settings: EventSettings = EventSettings()):
        self._labels = tuple(labels)
        self._timing = timing
        # Each label's minimum window probability, indexed like the labels.
        self._allowed, self._min_confidence = label_arrays(self._labels, settings)
        self._background = (self._labels.index(settings.background_label)
                            if settings.background_label in self._labels else -1)
        self._next_window = 0
        # The run still open at the end of the last chunk: (label index, first window, sum of probabilities, count).
        self._open: Optional[tuple[int, int, float, int]] = None

    def feed(self, probabilities: np.ndarray) -> list[Event]:
        """The events that ended within this chunk of ``[windows, labels]`` probabilities."""
        probabilities = np.asarray(probabilities)
        if probabilities.ndim != 2 or probabilities.shape[1] != len(self._labels):
            raise ValueError(f'expected [windows, {len(self._labels)}] probabilities, got {probabilities.shape}')
        if not len(probabilities):
            return []
        top = probabilities.argmax(axis=1)
        best = probabilities[np.arange(len(top)), top].astype(np.float64)
        # Each window's event label, or -1 where it starts no event.
        key = np.where((best >= self._min_confidence[top]) & self._allowed[top], top, -1)
        # Runs of equal keys inside the chunk: [starts[k], starts[k + 1]).
        starts = np.concatenate(([0], np.flatnonzero(key[1:] != key[:-1]) + 1))
        ends = np.append(starts[1:], len(key))
        sums = np.add.reduceat(best, starts)
        events = []
        offset = self._next_window
        for first, last, total in zip(starts, ends, sums):
            label = int(key[first])
            if self._open is not None:
                open_label, open_first, open_sum, open_count = self._open
                if first == 0 and label == open_label:
                    self._open = (label, open_first, open_sum + float(total), open_count + int(last - first))
                    continue
                events.append(self._close())
            if label >= 0:
                self._open = (label, offset + int(first), float(total), int(last - first))
        self._next_window += len(key)
        return events

    def finish(self) -> list[Event]:
        """The event still open at the end of the file, if any: it ends with the file."""
        return [self._close(at_end=True)] if self._open is not None else []

    def _close(self, at_end: bool = False) -> Event:
        assert self._open is not None  # callers close only an open event
        label, first, total, count = self._open
        self._open = None
        start, end = self._timing.span(first, first + count - 1, last_of_file=at_end)
        return Event(start_seconds=start, end_seconds=end, label=self._labels[label], confidence=total / count)


def allowed_mask(labels: Sequence[str], settings: EventSettings) -> np.ndarray:
    """Per label: whether it may be an event (not the background label, and on the species list if any)."""
    allowed = np.array([label != settings.background_label for label in labels], dtype=bool)
    if settings.allowed_labels is not None:
        allowed &= np.array([label in settings.allowed_labels for label in labels], dtype=bool)
    return allowed


@functools.lru_cache(maxsize=16)
def label_arrays(labels: tuple[str, ...], settings: EventSettings) -> tuple[np.ndarray, np.ndarray]:
    """(``allowed_mask``, ``settings.minimums``) of ``labels``, read-only: the same for every file of a run, so
    made once (for BirdNET's 6,522 labels, making them took half of a 15-s file's event detection)."""
    allowed, minimums = allowed_mask(labels, settings), settings.minimums(labels)
    allowed.flags.writeable = minimums.flags.writeable = False
    return allowed, minimums


class LabelRunTracker:
    """Events per label (``EventSettings.per_label_runs``; see the module doc): each label's open run is kept
    between chunks, and a run closes when its label drops below the threshold or it has ``merge_consecutive``
    windows. Work per window is proportional to the labels detected in it, not to the label count."""

    def __init__(self, labels: Sequence[str], timing: Timing, settings: EventSettings):
        self._labels = tuple(labels)
        self._timing = timing
        self._settings = settings
        self._allowed, self._minimums = label_arrays(self._labels, settings)
        self._next_window = 0
        # label index -> (first window, its windows' probabilities so far)
        self._open: dict[int, tuple[int, list[float]]] = {}

    def feed(self, probabilities: np.ndarray) -> list[Event]:
        probabilities = np.asarray(probabilities)
        if probabilities.ndim != 2 or probabilities.shape[1] != len(self._labels):
            raise ValueError(f'expected [windows, {len(self._labels)}] probabilities, got {probabilities.shape}')
        limit = self._settings.merge_consecutive
        if self._settings.multi_label:
            hot = (probabilities >= self._minimums) & self._allowed
        else:
            top = probabilities.argmax(axis=1)
            hot = np.zeros(probabilities.shape, dtype=bool)
            rows = np.arange(len(top))
            hot[rows, top] = (probabilities[rows, top] >= self._minimums[top]) & self._allowed[top]
        events: list[Event] = []
        for row in range(len(probabilities)):
            window = self._next_window + row
            detected = np.flatnonzero(hot[row]).tolist()
            still = set(detected)
            for label in [label for label in self._open if label not in still]:
                events.append(self._close(label))
            for label in detected:
                score = float(probabilities[row, label])
                if label in self._open:
                    self._open[label][1].append(score)
                else:
                    self._open[label] = (window, [score])
                if limit and len(self._open[label][1]) == limit:
                    events.append(self._close(label))
        self._next_window += len(probabilities)
        return events

    def finish(self) -> list[Event]:
        return [self._close(label, at_end=True) for label in list(self._open)]

    def _close(self, label: int, at_end: bool = False) -> Event:
        first, scores = self._open.pop(label)
        last = first + len(scores) - 1
        if self._settings.merge_consecutive:   # BirdNET's rule: the windows as they are, mean of the top 3
            t = self._timing
            start, end = first * t.hop_seconds, last * t.hop_seconds + t.window_seconds
            confidence = float(np.mean(sorted(scores, reverse=True)[:MERGED_TOP_SCORES]))
        else:
            start, end = self._timing.span(first, last, last_of_file=at_end)
            confidence = float(np.mean(scores))
        return Event(start_seconds=start, end_seconds=end, label=self._labels[label], confidence=confidence)


def event_order(event: Event) -> tuple[float, float, str]:
    """Time order; at the same start, the most confident first (as BirdNET lists a window's species)."""
    return event.start_seconds, -event.confidence, event.label


def detect_events(probabilities: np.ndarray, labels: Sequence[str], timing: Timing,
                  settings: EventSettings = EventSettings(), chunk_windows: int = CHUNK_WINDOWS) -> list[Event]:
    """Every event of one file's ``[windows, labels]`` probabilities, in time order (``event_order``)."""
    events = list(iter_events((probabilities[i:i + chunk_windows]
                               for i in range(0, len(probabilities), chunk_windows)), labels, timing, settings))
    return sorted(events, key=event_order) if settings.per_label_runs else events


def iter_events(chunks: Iterable[np.ndarray], labels: Sequence[str], timing: Timing,
                settings: EventSettings = EventSettings()):
    """Events as chunks of probabilities arrive (in window order): a streaming ``detect_events``; with
    ``per_label_runs`` events come as their runs close, which is not always in order of their start."""
    tracker: EventTracker | LabelRunTracker = (LabelRunTracker(labels, timing, settings) if settings.per_label_runs
                                               else EventTracker(labels, timing, settings))
    for chunk in chunks:
        yield from tracker.feed(chunk)
    yield from tracker.finish()
