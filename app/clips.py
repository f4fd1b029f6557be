"""A time range of a long recording, for the page: its audio, and its spectrogram drawn for that range.

An hour-long file's whole-file spectrogram, squeezed into the page, has an unreadable time axis, and its
audio may be larger than the page loads. So a long file is shown a range at a time (``RANGE_SECONDS`` by
default, at most ``MAX_RANGE_SECONDS``): only that range is read (a local file or a Cloud Storage object that
libsndfile can seek is read from the range's first frame; other formats are decoded whole once, then cut),
its spectrogram is rendered at the width the page shows it (labels at their own size) with the time axis in
the file's own time, and the player gets that range as a WAV.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np

from app.media import MAX_AUDIO_BYTES, MediaUnavailable, local_path, read_media
from audio.spectrogram import SpectrogramStyle, render_png

LONG_FILE_SECONDS = 120.0   # longer files are shown a range at a time
RANGE_SECONDS = 60.0        # the range first shown
MAX_RANGE_SECONDS = 300.0   # the widest range: its WAV stays a few MB, its events a readable few dozen
PLOT_WIDTH = 950            # plot pixels of a range's spectrogram: its image fills the page's 1,100 px near 1:1
DECODE_RATE = 16000         # formats libsndfile cannot seek are decoded (mono) at this rate
MAX_DECODE_SECONDS = 4 * 3600


@dataclass(frozen=True)
class Span:
    """A time range of a file, in seconds from its start."""
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def is_long(duration_seconds: float | None) -> bool:
    return bool(duration_seconds) and float(duration_seconds or 0) > LONG_FILE_SECONDS


def clamp(start: float, end: float, duration: float) -> Span:
    """A valid range of a ``duration``-second file near ``(start, end)``: inside the file, at least one second
    (or the file), at most MAX_RANGE_SECONDS (the end follows the start)."""
    duration = max(0.0, float(duration))
    start = min(max(0.0, float(start)), max(0.0, duration - 1.0))
    end = min(max(float(end), start + min(1.0, duration)), duration, start + MAX_RANGE_SECONDS)
    return Span(start, end)


def first_span(duration: float) -> Span:
    return clamp(0.0, RANGE_SECONDS, duration)


def shifted(span: Span, direction: int, duration: float) -> Span:
    """The same width one range earlier (-1) or later (+1), stopping at the file's ends."""
    width = span.seconds
    start = min(max(0.0, span.start + direction * width), max(0.0, duration - width))
    return clamp(start, start + width, duration)


def clock(seconds: float) -> str:
    """``12:05`` / ``1:02:05``: how the range is named on the page."""
    whole = int(math.floor(seconds + 1e-6))
    return (f'{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}' if whole >= 3600
            else f'{whole // 60}:{whole % 60:02d}')


def read_span(uri: str, span: Span) -> tuple[np.ndarray, int]:
    """(mono float32 samples of the range, their rate). Raises MediaUnavailable when the file cannot be read."""
    import soundfile

    if uri.startswith('gs://'):
        source: object = io.BytesIO(read_media(uri, MAX_AUDIO_BYTES))
    else:
        source = local_path(uri)
    try:
        with soundfile.SoundFile(source) as f:
            if f.seekable():
                rate = f.samplerate
                f.seek(min(int(span.start * rate), max(0, f.frames)))
                block = f.read(max(0, int(round(span.seconds * rate))), dtype='float32', always_2d=True)
                return block.mean(axis=1).astype(np.float32), rate
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        pass  # not a libsndfile format (MP3 in some builds, AAC, WMA...): decoded below
    except OSError as e:
        raise MediaUnavailable(f'{uri} cannot be read ({e})') from e
    samples = _decoded(uri)
    return samples[int(span.start * DECODE_RATE):int(span.end * DECODE_RATE)], DECODE_RATE


def _decoded(uri: str) -> np.ndarray:
    from audio.decode import DecodeError, decode

    data = read_media(uri, MAX_AUDIO_BYTES)
    try:
        samples, _ = decode(io.BytesIO(data), DECODE_RATE, MAX_DECODE_SECONDS, size=len(data))
    except DecodeError as e:
        raise MediaUnavailable(f'cannot be decoded for playback ({e})') from e
    return samples


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    import soundfile

    out = io.BytesIO()
    soundfile.write(out, samples, rate, format='WAV', subtype='PCM_16')
    return out.getvalue()


def span_spectrogram(samples: np.ndarray, rate: int, span: Span, title: str) -> bytes:
    """The range's spectrogram PNG: its own time axis (the file's times), plot width PLOT_WIDTH pixels."""
    style = SpectrogramStyle(min_width=PLOT_WIDTH, max_width=PLOT_WIDTH)
    return render_png(samples, rate, f'{title}  {clock(span.start)}–{clock(span.end)}', style, span.start)
