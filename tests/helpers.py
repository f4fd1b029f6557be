"""Helpers the tests share for making their own audio (fixtures live in conftest.py)."""
from __future__ import annotations

import io
import os

import numpy as np

from audio import encode, synth
from audio.decode import decode
from audio.records import AudioInfo

DEMO_LABELS = tuple(synth.DEMO_CLASSES)


def write_clip(folder, name: str, kind: str = 'wav', seconds: float = 1.5, rate: int = 16000, channels: int = 1,
               label: str = 'chirp', seed: int = 0) -> str:
    """Writes one synthetic clip; returns its path."""
    samples = synth.make(label, np.random.default_rng(seed), seconds, rate)
    if channels > 1:
        samples = np.stack([samples] * channels, axis=1)
    path = os.path.join(str(folder), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return encode.write(path, samples, rate, kind)


def decode_bytes(data: bytes, target_rate: int, max_duration_s: float) -> tuple[np.ndarray, AudioInfo]:
    """``audio.decode.decode`` from bytes in memory."""
    return decode(io.BytesIO(data), target_rate, max_duration_s, size=len(data))


def write_bytes(folder, name: str, data: bytes) -> str:
    path = os.path.join(str(folder), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)
    return path


def run_dofn(fn, elements, timestamps=None) -> list:
    """One bundle through a DoFn as a runner drives it (setup, start, process each, finish, teardown), with each
    element in the global window at its timestamp (default: its index); returns what it output, as emitted."""
    from apache_beam.transforms.window import GlobalWindow
    from apache_beam.utils.timestamp import Timestamp
    from apache_beam.utils.windowed_value import PANE_INFO_UNKNOWN

    fn.setup()
    fn.start_bundle()
    out = []
    for i, element in enumerate(elements):
        at = Timestamp(timestamps[i] if timestamps else i)
        out += list(fn.process(element, timestamp=at, window=GlobalWindow(), pane=PANE_INFO_UNKNOWN) or [])
    out += list(fn.finish_bundle() or [])
    fn.teardown()
    return out


def unwrapped(outputs) -> list:
    """Outputs without their windowing: values, and TaggedOutputs of values."""
    from apache_beam.pvalue import TaggedOutput
    from apache_beam.utils.windowed_value import WindowedValue

    def value(o):
        return o.value if isinstance(o, WindowedValue) else o
    return [TaggedOutput(o.tag, value(o.value)) if isinstance(o, TaggedOutput) else value(o) for o in outputs]
