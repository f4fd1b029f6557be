"""Spectrogram images without pyplot: numpy STFT, a colormap lookup table, Pillow.

The original design drew a 14x5-inch pyplot figure per file, its slowest step.
This renders the same content (dB colour scale, time across, frequency up,
axis ticks, a colour bar and the file name) by indexing matplotlib's colormap
as a lookup table and drawing the few labels with Pillow: a few milliseconds
per clip. The STFT runs over blocks of frames and is max-pooled in time to at
most ``max_width`` columns, so a long file costs bounded memory and pixels.
"""
from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont


@dataclass(frozen=True)
class SpectrogramStyle:
    n_fft: int = 512
    hop: int = 128
    top_db: float = 80.0
    colormap: str = 'magma'
    min_width: int = 600       # short clips are stretched to stay readable
    max_width: int = 1600      # long files are pooled in time to this many columns
    frames_per_block: int = 4096


LEFT, RIGHT, TOP, BOTTOM = 62, 86, 26, 40
BACKGROUND, INK = (255, 255, 255), (30, 30, 30)
_TIME_STEPS = (0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


def power_spectrogram(samples: np.ndarray, style: SpectrogramStyle) -> tuple[np.ndarray, float]:
    """``[bins, columns]`` STFT power, max-pooled in time; and the frames pooled into each column."""
    n_fft, hop = style.n_fft, style.hop
    padded = samples if len(samples) >= n_fft else np.pad(samples, (0, n_fft - len(samples)))
    n_frames = 1 + (len(padded) - n_fft) // hop
    group = max(1, math.ceil(n_frames / style.max_width))
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)  # periodic Hann
    block = max(group, style.frames_per_block // group * group)  # whole groups per block
    columns = []
    for first in range(0, n_frames, block):
        count = min(block, n_frames - first)
        start = first * hop
        frames = np.lib.stride_tricks.sliding_window_view(padded[start:start + (count - 1) * hop + n_fft], n_fft)[::hop]
        power = np.abs(np.fft.rfft(frames * window, axis=1)).astype(np.float32) ** 2
        if group > 1:
            whole = len(power) // group * group
            pooled = power[:whole].reshape(-1, group, power.shape[1]).max(axis=1)
            if whole < len(power):
                pooled = np.vstack([pooled, power[whole:].max(axis=0, keepdims=True)])
            power = pooled
        columns.append(power)
    return np.concatenate(columns).T, float(group)


def to_db(power: np.ndarray, top_db: float) -> np.ndarray:
    """Decibels relative to the loudest bin, floored ``top_db`` below it (librosa's power_to_db(ref=np.max))."""
    ref = max(float(power.max()), 1e-10)
    return np.maximum(10.0 * np.log10(np.maximum(power, 1e-10) / ref), -top_db)


def render_png(samples: np.ndarray, sample_rate: int, title: str, style: SpectrogramStyle = SpectrogramStyle()
               ) -> bytes:
    """A readable spectrogram PNG of mono ``samples`` at ``sample_rate``."""
    power, _ = power_spectrogram(samples, style)
    db = to_db(power, style.top_db)
    width = min(style.max_width, max(style.min_width, db.shape[1]))
    # Nearest-column stretch for short clips; low frequencies at the bottom.
    cols = (np.arange(width) * db.shape[1] // width)
    levels = np.round((db[::-1, cols] + style.top_db) * (255.0 / style.top_db)).astype(np.uint8)
    plot = Image.fromarray(_lut(style.colormap)[levels], 'RGB')
    duration = len(samples) / sample_rate

    canvas = Image.new('RGB', (LEFT + width + RIGHT, TOP + plot.height + BOTTOM), BACKGROUND)
    canvas.paste(plot, (LEFT, TOP))
    draw = ImageDraw.Draw(canvas)
    font = _font()
    draw.text((LEFT, 6), _ellipsize(title, width // 7), fill=INK, font=font)
    draw.rectangle((LEFT - 1, TOP - 1, LEFT + width, TOP + plot.height), outline=INK)
    _frequency_axis(draw, font, sample_rate, plot.height)
    _time_axis(draw, font, duration, width, plot.height)
    _colour_bar(canvas, draw, font, style, width, plot.height)

    out = io.BytesIO()
    canvas.save(out, format='PNG', compress_level=1)
    return out.getvalue()


def _frequency_axis(draw, font, sample_rate: int, height: int) -> None:
    nyquist = sample_rate / 2
    step = 1000 if nyquist <= 8000 else 2000 if nyquist <= 16000 else 5000
    for hz in np.arange(0, nyquist + 1, step):
        y = TOP + height - 1 - round(hz / nyquist * (height - 1))
        draw.line((LEFT - 5, y, LEFT - 1, y), fill=INK)
        draw.text((LEFT - 8, y), f'{hz / 1000:g}k', fill=INK, font=font, anchor='rm')
    draw.text((10, TOP + height // 2), 'Hz', fill=INK, font=font, anchor='lm')


def _time_axis(draw, font, duration: float, width: int, height: int) -> None:
    step = next((s for s in _TIME_STEPS if duration / s <= 10), _TIME_STEPS[-1] * math.ceil(duration / 36000))
    y = TOP + height
    for t in np.arange(0, duration + 1e-9, step):
        x = LEFT + round(t / max(duration, 1e-9) * (width - 1))
        draw.line((x, y, x, y + 4), fill=INK)
        draw.text((x, y + 6), _clock(t, step), fill=INK, font=font, anchor='mt')
    draw.text((LEFT + width // 2, y + 22), 'time', fill=INK, font=font, anchor='mt')


def _colour_bar(canvas, draw, font, style: SpectrogramStyle, width: int, height: int) -> None:
    x0 = LEFT + width + 14
    gradient = np.linspace(255, 0, height).astype(np.uint8)[:, None].repeat(12, axis=1)
    canvas.paste(Image.fromarray(_lut(style.colormap)[gradient], 'RGB'), (x0, TOP))
    draw.rectangle((x0 - 1, TOP - 1, x0 + 12, TOP + height), outline=INK)
    for db in range(0, -int(style.top_db) - 1, -20):
        y = TOP + round(-db / style.top_db * (height - 1))
        draw.text((x0 + 16, y), f'{db} dB', fill=INK, font=font, anchor='lm')


def _clock(t: float, step: float) -> str:
    if step >= 60:
        return f'{int(t // 3600)}:{int(t % 3600 // 60):02d}:{int(t % 60):02d}' if t >= 3600 else \
            f'{int(t // 60)}:{int(t % 60):02d}'
    return f'{t:g}s'


def _ellipsize(text: str, limit: int) -> str:
    return text if len(text) <= limit else '…' + text[-(limit - 1):]


@functools.lru_cache(maxsize=4)
def _lut(name: str) -> np.ndarray:
    from matplotlib import colormaps  # only the colour table; no figure, no pyplot

    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def _font():
    return ImageFont.load_default(size=12)
