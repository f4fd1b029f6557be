"""The element types that flow through the pipeline, named from the domain.

Each stage takes one record and returns the next; a record carries everything
later stages and the result row need, so no stage has to join back to an
earlier one (no shuffle of waveforms, no stateful join in streaming).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from audio.signal import Signal


def object_key(uri: str, generation: str) -> str:
    """The identity of one version of an object, ``uri#generation``: for dedupe, replay and output names."""
    return f'{uri}#{generation}'


@dataclass(frozen=True)
class AudioObject:
    """One object (file) to process, as announced by a notification or a match.

    ``generation`` identifies one version of the object: the Cloud Storage
    object generation, or for local files the modification time in
    nanoseconds. ``(uri, generation)`` is the identity used for dedupe.
    """
    uri: str
    name: str
    generation: str = ''
    bucket: Optional[str] = None
    size: Optional[int] = None
    content_type: Optional[str] = None
    event_time: Optional[float] = None  # seconds since the epoch, UTC
    # When the pipeline first saw this version: its notification's event time, or when a listing or match found
    # it (seconds since the epoch). Not the file's own time: a file copied with an old mtime is new to the pipeline.
    seen_at: Optional[float] = None

    @property
    def key(self) -> str:
        return object_key(self.uri, self.generation)


@dataclass(frozen=True)
class AudioInfo:
    """What decoding learned about the original audio."""
    sample_rate_hz: int        # of the original file
    channels: int              # of the original file
    duration_seconds: float


@dataclass(frozen=True, eq=False)
class DecodedAudio:
    """Mono float32 samples at the model's sample rate, plus their origin. ``samples`` is a float32 array, or
    ``PcmSamples`` (16-bit PCM read as the same float32 values, half the memory): read it with ``len`` and
    slices."""
    source: AudioObject
    info: AudioInfo
    samples: Signal
    sample_rate_hz: int  # of ``samples`` (the model's rate)
    spectrogram_uri: str = ''
    # The PNG itself while it waits to be written after inference (--spectrogram_events draws the events on it
    # first, so it is written once); empty once written.
    spectrogram_png: bytes = b''

    def with_spectrogram(self, uri: str, png: bytes = b'') -> 'DecodedAudio':
        return dataclasses.replace(self, spectrogram_uri=uri, spectrogram_png=png)


@dataclass(frozen=True)
class ProcessedAudio:
    """A decoded file without its samples: what inference keys its output by."""
    source: AudioObject
    info: AudioInfo
    spectrogram_uri: str
    spectrogram_png: bytes = b''   # as DecodedAudio's

    @classmethod
    def of(cls, decoded: DecodedAudio) -> 'ProcessedAudio':
        return cls(decoded.source, decoded.info, decoded.spectrogram_uri, decoded.spectrogram_png)

    def without_png(self) -> 'ProcessedAudio':
        return dataclasses.replace(self, spectrogram_png=b'')


@dataclass(frozen=True)
class Event:
    """Something heard over a stretch of a file: a run of windows with the same confident label."""
    start_seconds: float
    end_seconds: float
    label: str
    confidence: float   # mean probability of ``label`` over the run (BirdNET's merging: over its top 3 windows)


@dataclass(frozen=True)
class Classification:
    """The per-file outcome of inference (window scores already aggregated)."""
    label: str
    confidence: float
    # (label, score): every label in model label order; multi-label models: the top labels, most confident first
    scores: tuple[tuple[str, float], ...]
    model_version: str
    windows: int
    events: Optional[tuple[Event, ...]] = None   # in time order; None when events are not computed


@dataclass(frozen=True)
class FailedAudio:
    """An input that failed at some stage: becomes one row in the error table."""
    source: AudioObject
    stage: str          # read | parse | decode | spectrogram | inference | write
    error_type: str     # a short machine-readable class, e.g. TooLong
    message: str
    # False: the input itself is bad (retrying cannot help). True: a bad moment (an outage, a lock) outlasted the
    # stage's retries; a later batch replay retries the file (see transforms/failures.py, docs/reliability.md).
    retryable: bool = False
    attempts: int = 1   # how many times the stage tried before giving up
