"""Spectrogram images without pyplot: scipy's float32 FFT, a palette PNG, Pillow for the labels.

The original design drew a 14x5-inch pyplot figure per file, its slowest step.
This renders the same content (dB colour scale, time across, frequency up,
axis ticks, a colour bar and the file name) in a few milliseconds per clip:
the STFT runs in float32 (scipy's FFT is several times faster than numpy's
here), the image is a palette PNG (one byte per pixel: a third of the bytes
to filter and compress, half the file size of RGB), and the labels that are
the same for every file of a given size are drawn once and cached. The STFT
runs over blocks of frames and is max-pooled in time to at most ``max_width``
columns, so a long file costs bounded memory and pixels.
"""
from __future__ import annotations

import functools
import os
import io
import math
import struct
import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.fft
from PIL import Image, ImageDraw, ImageFont

from audio.framing import frames as frame_view
from audio.signal import Signal


@dataclass(frozen=True)
class SpectrogramStyle:
    n_fft: int = 512
    hop: int = 128
    top_db: float = 80.0
    colormap: str = 'magma'
    min_width: int = 600       # short clips are stretched to stay readable
    max_width: int = 1600      # long files are pooled in time to this many columns
    # STFT frames per block: 512 frames' windowed copy and spectrum (~2 MB) stay in cache. Measured on a 15-s
    # 48 kHz file: 6.5 ms of CPU at 256-1024 frames a block, 14-17 ms at 4,096; the same numbers either way.
    frames_per_block: int = 512


LEFT, RIGHT, TOP, BOTTOM = 62, 86, 26, 40
BACKGROUND, INK = (255, 255, 255), (30, 30, 30)
_TIME_STEPS = (0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
# Palette: the first COLOURS entries are the dB colour scale, the rest greys from INK to white for the
# anti-aliased labels (drawn in greyscale, then mapped onto those entries).
COLOURS = 240
_GREYS = 256 - COLOURS
_BAR_GAP, _BAR_WIDTH = 14, 12


def power_spectrogram(samples: Signal, style: SpectrogramStyle) -> tuple[np.ndarray, float]:
    """``[bins, columns]`` float32 STFT power, max-pooled in time; and the frames pooled into each column."""
    n_fft, hop = style.n_fft, style.hop
    if len(samples) < n_fft:
        samples = np.pad(np.asarray(samples, dtype=np.float32), (0, n_fft - len(samples)))
    n_frames = 1 + (len(samples) - n_fft) // hop
    group = max(1, math.ceil(n_frames / style.max_width))
    window = _hann(n_fft)
    block = max(group, style.frames_per_block // group * group)  # whole groups per block
    # One buffer for the windowed frames of every block, written in place: fresh multi-MB temporaries per
    # step (frames * window, real ** 2, imag ** 2, their sum) doubled the cost of a 5-s clip (1.6 -> 0.8 ms).
    windowed = np.empty((min(block, n_frames), n_fft), np.float32)
    columns = []
    for first in range(0, n_frames, block):
        count = min(block, n_frames - first)
        start = first * hop
        # Read a block at a time: float32 samples as views; 16-bit PCM (audio/pcm.py) as float32 copies.
        block_samples = np.asarray(samples[start:start + (count - 1) * hop + n_fft], dtype=np.float32)
        frames = frame_view(block_samples, n_fft, hop)
        spectrum = scipy.fft.rfft(np.multiply(frames, window, out=windowed[:count]), axis=1)
        power = np.square(spectrum.real)
        power += np.square(spectrum.imag)
        if group > 1:
            whole = len(power) // group * group
            pooled = power[:whole].reshape(-1, group, power.shape[1]).max(axis=1)
            if whole < len(power):
                pooled = np.vstack([pooled, power[whole:].max(axis=0, keepdims=True)])
            power = pooled
        columns.append(power)
    return np.concatenate(columns).T, float(group)


@functools.lru_cache(maxsize=4)
def _hann(n_fft: int) -> np.ndarray:
    return _frozen(np.hanning(n_fft + 1)[:-1].astype(np.float32))  # periodic


def to_db(power: np.ndarray, top_db: float) -> np.ndarray:
    """Decibels relative to the loudest bin, floored ``top_db`` below it (librosa's power_to_db(ref=np.max))."""
    ref = max(float(power.max()), 1e-10)
    return np.maximum(10.0 * np.log10(np.maximum(power, 1e-10) / ref), -top_db)


def render_png(samples: Signal, sample_rate: int, title: str, style: SpectrogramStyle = SpectrogramStyle(),
               start_seconds: float = 0.0) -> bytes:
    """A readable spectrogram PNG of mono ``samples`` at ``sample_rate``. ``start_seconds``: where ``samples``
    begin in their file (a part of a long file), so the time axis reads in the file's own time."""
    power, _ = power_spectrogram(samples, style)
    levels = np.rint((to_db(power, style.top_db) + style.top_db) * ((COLOURS - 1) / style.top_db)).astype(np.uint8)
    width = min(style.max_width, max(style.min_width, levels.shape[1]))
    # Nearest-column stretch for short clips; low frequencies at the bottom.
    plot = levels[::-1, np.arange(width) * levels.shape[1] // width]
    height = plot.shape[0]

    pixels = np.full((TOP + height + BOTTOM, LEFT + width + RIGHT), _WHITE, dtype=np.uint8)
    pixels[:, :LEFT] = _frequency_axis(sample_rate, height)
    pixels[:, LEFT + width:] = _colour_bar_labels(style.top_db, height)
    _box(pixels, LEFT - 1, TOP - 1, LEFT + width, TOP + height)
    _stamp_line(pixels, LEFT, 6, _ellipsize(title, width // 7))
    _time_axis(pixels, len(samples) / sample_rate, width, height, start_seconds)
    pixels[TOP:TOP + height, LEFT:LEFT + width] = plot
    x0 = LEFT + width + _BAR_GAP
    pixels[TOP:TOP + height, x0:x0 + _BAR_WIDTH] = _bar(height)
    return encode_palette_png(pixels, _palette(style.colormap))


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data))


def encode_palette_png(pixels: np.ndarray, palette: Sequence[int]) -> bytes:
    """``[height, width]`` uint8 palette indices -> PNG bytes (8-bit palette, no filter, zlib level 1).

    What Pillow writes for a palette image at ``compress_level=1``, written here: zlib's compression releases
    the GIL and Pillow's encoder does not, which kept a worker's other threads waiting (a ``py-spy --gil``
    profile of the pipeline); it is also 0.35 ms cheaper per 5-s clip. No filter is what Pillow uses for
    palette images too: each row is its filter byte (0) and its indices.
    """
    height, width = pixels.shape
    rows = np.empty((height, width + 1), np.uint8)
    rows[:, 0] = 0
    rows[:, 1:] = pixels
    return b''.join([_PNG_SIGNATURE,
                     _png_chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 3, 0, 0, 0)),
                     _png_chunk(b'PLTE', bytes(palette)),
                     _png_chunk(b'IDAT', zlib.compress(rows.tobytes(), 1)),
                     _png_chunk(b'IEND', b'')])


_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


EVENT_STRIP = 20        # pixels added under the time axis for event bands
_EVENT_BAND = 5         # band height
_EVENT_COLOUR = round(COLOURS * 0.72)   # an orange of the magma scale, readable on white


def plot_columns(image_width: int) -> tuple[int, int]:
    """(first pixel column, width) of the plot in a spectrogram image this module drew: time 0 to the end.

    The dashboard's event timeline uses it to line up with the image's time axis.
    """
    return LEFT, image_width - LEFT - RIGHT


def add_event_bands(png: bytes, duration_seconds: float, events: Sequence[tuple[float, float, str]]) -> bytes:
    """The PNG with a strip under the time axis marking each (start, end, label) event: a band and its label.

    Width and plot are unchanged (the time scale stays the dashboard's); a label is written when it fits.
    """
    with Image.open(io.BytesIO(png)) as image:
        palette = image.getpalette()
        pixels = np.asarray(image)
    left, width = plot_columns(pixels.shape[1])
    strip = np.full((EVENT_STRIP, pixels.shape[1]), _WHITE, dtype=np.uint8)
    scale = (width - 1) / max(duration_seconds, 1e-9)
    for start, end, label in events:
        x0 = left + int(round(start * scale))
        x1 = max(left + int(round(end * scale)), x0 + 2)
        strip[2:2 + _EVENT_BAND, x0:x1] = _EVENT_COLOUR
        if _font().getlength(label) <= x1 - x0 + 4:
            _stamp(strip, x0, 3 + _EVENT_BAND, label, 'la')
    assert palette is not None  # render_png writes a palette image
    return encode_palette_png(np.vstack([pixels, strip]), palette)


@functools.lru_cache(maxsize=16)
def _frequency_axis(sample_rate: int, height: int) -> np.ndarray:
    """The strip left of the plot (ticks and kHz labels): the same for every file at this rate and size."""
    strip = np.full((TOP + height + BOTTOM, LEFT), _WHITE, dtype=np.uint8)
    nyquist = sample_rate / 2
    step = 1000 if nyquist <= 8000 else 2000 if nyquist <= 16000 else 5000
    for hz in np.arange(0, nyquist + 1, step):
        y = TOP + height - 1 - round(hz / nyquist * (height - 1))
        strip[y, LEFT - 5:LEFT] = _INK
        _stamp(strip, LEFT - 8, y, f'{hz / 1000:g}k', 'rm')
    _stamp(strip, 10, TOP + height // 2, 'Hz', 'lm')
    return _frozen(strip)


@functools.lru_cache(maxsize=16)
def _colour_bar_labels(top_db: float, height: int) -> np.ndarray:
    """The strip right of the plot: the colour bar's frame and dB labels (the bar itself is filled in later)."""
    strip = np.full((TOP + height + BOTTOM, RIGHT), _WHITE, dtype=np.uint8)
    _box(strip, _BAR_GAP - 1, TOP - 1, _BAR_GAP + _BAR_WIDTH, TOP + height)
    for db in range(0, -int(top_db) - 1, -20):
        _stamp(strip, _BAR_GAP + 16, TOP + round(-db / top_db * (height - 1)), f'{db} dB', 'lm')
    return _frozen(strip)


@functools.lru_cache(maxsize=16)
def _bar(height: int) -> np.ndarray:
    return _frozen(np.linspace(COLOURS - 1, 0, height).astype(np.uint8)[:, None])


def time_ticks(duration: float, start: float = 0.0) -> list[tuple[float, str]]:
    """The time axis's ticks over ``duration`` seconds from ``start``: (seconds from ``start``, label), at most
    about ten, at round times of the file (``12:30``, not ``750s``, once the axis is past the first minute)."""
    step = next((s for s in _TIME_STEPS if duration / s <= 10), _TIME_STEPS[-1] * math.ceil(duration / 36000))
    if not start:
        return [(float(t), _clock(t, step)) for t in np.arange(0, duration + 1e-9, step)]
    first = math.ceil(start / step - 1e-9) * step
    label = _minutes if start + duration >= 60 else _clock
    return [(float(t - start), label(t, step)) for t in np.arange(first, start + duration + 1e-9, step)]


def _time_axis(pixels: np.ndarray, duration: float, width: int, height: int, start: float = 0.0) -> None:
    y = TOP + height
    for t, label in time_ticks(duration, start):
        x = LEFT + round(t / max(duration, 1e-9) * (width - 1))
        pixels[y:y + 5, x] = _INK
        _stamp(pixels, x, y + 6, label, 'mt')
    _stamp(pixels, LEFT + width // 2, y + 22, 'time', 'mt')


def _box(pixels: np.ndarray, left: int, top: int, right: int, bottom: int) -> None:
    """A one-pixel ink outline; the corners are included, as with ImageDraw.rectangle."""
    pixels[top, left:right + 1] = pixels[bottom, left:right + 1] = _INK
    pixels[top:bottom + 1, left] = pixels[top:bottom + 1, right] = _INK


def _stamp(pixels: np.ndarray, x: int, y: int, text: str, anchor: str) -> None:
    """Draws ``text`` in ink at (x, y) with a Pillow text ``anchor``, clipped to the array.

    Where labels and lines overlap the darker grey wins: grey palette indices grow with lightness.
    """
    label, dx, dy = _label(text, anchor)
    x0, y0 = x + dx, y + dy
    left, top = max(x0, 0), max(y0, 0)
    right, bottom = min(x0 + label.shape[1], pixels.shape[1]), min(y0 + label.shape[0], pixels.shape[0])
    if right > left and bottom > top:
        region = pixels[top:bottom, left:right]
        np.minimum(region, label[top - y0:bottom - y0, left - x0:right - x0], out=region)


def _stamp_line(pixels: np.ndarray, x: int, y: int, text: str) -> None:
    """Left-aligned text one cached character at a time: file names are all different, their letters are not."""
    position = float(x)
    for char in text:
        _stamp(pixels, round(position), y, char, 'la')
        position += _advance(char)


@functools.lru_cache(maxsize=1024)
def _label(text: str, anchor: str) -> tuple[np.ndarray, int, int]:
    """``text`` rendered once (anti-aliased ink on white, in palette indices, cropped) and its offset from the
    anchor point. Labels repeat from file to file; drawing text is otherwise the costliest part of a small image.
    """
    font = _font()
    left, top, right, bottom = font.getbbox(text, anchor=anchor)
    image = Image.new('L', (max(right - left, 1), max(bottom - top, 1)), BACKGROUND[0])
    ImageDraw.Draw(image).text((-left, -top), text, fill=INK[0], font=font, anchor=anchor)
    return _frozen(_GREY_TO_INDEX[np.asarray(image)]), left, top


@functools.lru_cache(maxsize=1024)
def _advance(char: str) -> float:
    return _font().getlength(char)


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array)
    array.flags.writeable = False  # shared by every later call through a cache
    return array


def _clock(t: float, step: float) -> str:
    if step >= 60:
        return f'{int(t // 3600)}:{int(t % 3600 // 60):02d}:{int(t % 60):02d}' if t >= 3600 else \
            f'{int(t // 60)}:{int(t % 60):02d}'
    return f'{t:g}s'


def _minutes(t: float, step: float) -> str:
    """``12:30`` (``12:30.5`` for sub-second steps; ``1:02:30`` past the hour)."""
    whole = int(t)
    head = f'{whole // 3600}:{whole % 3600 // 60:02d}' if t >= 3600 else f'{whole // 60}'
    seconds = f'{t % 60:04.1f}' if step < 1 else f'{whole % 60:02d}'
    return f'{head}:{seconds}'


def _ellipsize(text: str, limit: int) -> str:
    return text if len(text) <= limit else '…' + text[-(limit - 1):]


def _grey_to_index() -> np.ndarray:
    """Palette index of each grey level 0-255: the nearest of the label greys (INK ... white)."""
    grey = np.clip((np.arange(256) - INK[0]) / (BACKGROUND[0] - INK[0]), 0.0, 1.0)
    return (COLOURS + np.round(grey * (_GREYS - 1))).astype(np.uint8)


_GREY_TO_INDEX = _grey_to_index()
_WHITE, _INK = int(_GREY_TO_INDEX[BACKGROUND[0]]), int(_GREY_TO_INDEX[INK[0]])


@functools.lru_cache(maxsize=4)
def _palette(colormap: str) -> list[int]:
    from matplotlib import colormaps  # only the colour table; no figure, no pyplot

    colours = (colormaps[colormap](np.linspace(0, 1, COLOURS))[:, :3] * 255).round()
    greys = np.linspace(INK[0], BACKGROUND[0], _GREYS).round()[:, None].repeat(3, axis=1)
    return np.concatenate([colours, greys]).astype(np.uint8).reshape(-1).tolist()


@functools.lru_cache(maxsize=1)
def _font():
    # DejaVu Sans ships with matplotlib and covers accented Latin, Greek and Cyrillic names (Pillow's own
    # default font draws boxes for them).
    import matplotlib

    path = os.path.join(matplotlib.get_data_path(), 'fonts', 'ttf', 'DejaVuSans.ttf')
    return ImageFont.truetype(path, size=11) if os.path.exists(path) else ImageFont.load_default(size=12)
