"""A results database like a day of the embedded default's output, made from scratch for the dashboard tests.

Real audio files (synthetic sounds of the demo classes, a few formats), real
spectrogram PNGs rendered by the pipeline's own renderer, result rows and
error rows written through ``results.sqlite_store``.
"""
from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass

import numpy as np

from audio import encode, synth
from audio.spectrogram import SpectrogramStyle, render_png
from results import schema, sqlite_store

LABELS = tuple(synth.DEMO_CLASSES)
START = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone.utc)
RATE = 16000
PLACES = ('kitchen', 'street', 'office', 'park', 'station', 'garden')
KINDS = ('wav', 'flac', 'ogg')
MODEL_VERSION = 'demo-20260301'
ERRORS = (
    ('decode', 'UnreadableAudio', 'Invalid data found when processing input (not an audio stream)'),
    ('read', 'ObjectGone', 'deleted or overwritten before it was read'),
    ('decode', 'TooLong', 'duration 9120.0 s is over --max_duration_seconds 7200'),
    ('inference', 'ModelError', 'batch failed: ResourceExhausted'),
)


@dataclass(frozen=True)
class Sample:
    db_path: str
    input_dir: str
    processed: list[dict]
    errors: list[dict]
    events: dict[tuple[str, str], list[dict]]   # (audio_file, generation) -> its event rows, in time order


def scores_for(label: str, rng: np.random.Generator) -> list[dict]:
    """A softmax over the labels that favours ``label`` by a random margin (some files are uncertain)."""
    logits = rng.normal(0, 1, len(LABELS))
    logits[LABELS.index(label)] += rng.uniform(1.5, 5.0)
    probs = np.exp(logits) / np.exp(logits).sum()
    return [{'label': name, 'score': float(p)} for name, p in zip(LABELS, probs)]


def build(root: str, files: int = 12, errors: int = 3, seed: int = 7, start: dt.datetime = START) -> Sample:
    """Writes ``root/input/*`` audio, ``root/spectrograms/*.png`` and ``root/results.db``."""
    rng = np.random.default_rng(seed)
    input_dir = os.path.join(root, 'input')
    spectrogram_dir = os.path.join(root, 'spectrograms')
    os.makedirs(input_dir, exist_ok=True)
    os.makedirs(spectrogram_dir, exist_ok=True)
    processed = []
    for i in range(files):
        label = LABELS[i % len(LABELS)]
        kind = KINDS[i % len(KINDS)]
        duration = float(rng.uniform(1.5, 4.0))
        samples = synth.make(label, rng, duration, RATE)
        name = f'{PLACES[i % len(PLACES)]}-{i:03d}.{encode.extension(kind)}'
        audio_path = encode.write(os.path.join(input_dir, name), samples, RATE, kind)
        png_path = os.path.join(spectrogram_dir, name + '.png')
        with open(png_path, 'wb') as f:
            f.write(render_png(samples, RATE, name, SpectrogramStyle(min_width=480, max_width=800)))
        scores = scores_for(label, rng)
        best = max(scores, key=lambda s: s['score'])
        # Spread over six hours; latency grows in the afternoon, as when a backlog builds up.
        event = start + dt.timedelta(minutes=i * 360 / max(1, files) + float(rng.uniform(0, 5)))
        latency = 2.0 + 6.0 * (i / max(1, files)) ** 2 + float(rng.uniform(0, 1.5))
        processed.append({
            # A local file's generation is its modification time in ns, as the pipeline records it.
            'audio_file': audio_path, 'generation': str(os.stat(audio_path).st_mtime_ns),
            'spectrogram_image': png_path, 'label': best['label'], 'confidence': best['score'], 'scores': scores,
            'model_version': MODEL_VERSION, 'duration_seconds': len(samples) / RATE, 'sample_rate_hz': RATE,
            'channels': 1, 'event_time': schema.timestamp(event.timestamp()),
            'processed_at': schema.timestamp(event.timestamp() + latency),
        })
        processed[-1]['event_count'] = len(sample_events(processed[-1], i))
    error_rows = []
    for i in range(errors):
        stage, error_type, message = ERRORS[i % len(ERRORS)]
        failed = start + dt.timedelta(minutes=45 + i * 97)
        error_rows.append({
            'audio_file': os.path.join(input_dir, f'broken-{i:02d}.mp3'), 'generation': str(1_600_000_000 + i),
            'stage': stage, 'error_type': error_type, 'message': message,
            'failed_at': schema.timestamp(failed.timestamp()),
        })
    db_path = os.path.join(root, 'results.db')
    events = {(r['audio_file'], r['generation']): sample_events(r, i) for i, r in enumerate(processed)}
    with sqlite_store.connect(db_path) as conn:
        sqlite_store.write_processed(conn, [{**r, schema.ROW_EVENTS_KEY: events[(r['audio_file'], r['generation'])]}
                                            for r in processed])
        sqlite_store.write_errors(conn, error_rows)
    return Sample(db_path=db_path, input_dir=input_dir, processed=processed, errors=error_rows, events=events)


def sample_events(row: dict, i: int) -> list[dict]:
    """The file's own label heard over its middle; every odd file also has a second label near its end."""
    d = row['duration_seconds']
    spans = [(0.2 * d, 0.6 * d, row['label'], 0.91)]
    if i % 2 == 1:
        spans.append((0.7 * d, 0.95 * d, LABELS[(LABELS.index(row['label']) + 1) % len(LABELS)], 0.64))
    return [{'audio_file': row['audio_file'], 'generation': row['generation'], 'start_seconds': round(a, 3),
             'end_seconds': round(b, 3), 'label': label, 'confidence': c, 'model_version': row['model_version'],
             'processed_at': row['processed_at']} for a, b, label, c in spans]


def bulk_rows(count: int, start: dt.datetime = START) -> list[dict]:
    """``count`` result rows without files behind them: for the paging tests at scale."""
    rows = []
    for i in range(count):
        label = LABELS[i % len(LABELS)]
        t = start.timestamp() + i * 0.9
        confidence = 0.2 + 0.8 * ((i * 7919) % 1000) / 1000
        rows.append({
            'audio_file': f'gs://uploads/day/clip-{i:06d}.wav', 'generation': str(i), 'spectrogram_image': None,
            'label': label, 'confidence': confidence, 'scores': [{'label': label, 'score': confidence}],
            'model_version': MODEL_VERSION, 'duration_seconds': 2.0, 'sample_rate_hz': RATE, 'channels': 1,
            'event_time': schema.timestamp(t - 3.0 - math.sin(i) ** 2), 'processed_at': schema.timestamp(t),
        })
    return rows


def add_file(sample: Sample, name: str, kind: str = 'wav', duration: float = 2.0, label: str = 'tone',
             processed_at: dt.datetime | None = None, seed: int = 11, record: bool = True) -> dict:
    """One more real file with its spectrogram and result row (newest unless ``processed_at`` says otherwise).

    ``record=False``: the row is returned but not written (the file waits for the pipeline; ``record`` it later).
    """
    rng = np.random.default_rng(seed)
    samples = synth.make(label, rng, duration, RATE)
    audio_path = encode.write(os.path.join(sample.input_dir, name), samples, RATE, kind)
    png_path = os.path.join(os.path.dirname(sample.db_path), 'spectrograms', os.path.basename(name) + '.png')
    with open(png_path, 'wb') as f:
        f.write(render_png(samples, RATE, name, SpectrogramStyle(min_width=480, max_width=800)))
    scores = scores_for(label, rng)
    best = max(scores, key=lambda s: s['score'])
    when = processed_at or dt.datetime.now(dt.timezone.utc)
    row = {'audio_file': audio_path, 'generation': str(os.stat(audio_path).st_mtime_ns),
           'spectrogram_image': png_path, 'label': best['label'], 'confidence': best['score'], 'scores': scores,
           'model_version': MODEL_VERSION, 'duration_seconds': len(samples) / RATE, 'sample_rate_hz': RATE,
           'channels': 1, 'event_time': schema.timestamp(when.timestamp() - 2),
           'processed_at': schema.timestamp(when.timestamp())}
    if record:
        record_rows(sample, [row])
    return row


def record_rows(sample: Sample, rows: list[dict]) -> None:
    """Writes result rows as the pipeline would."""
    with sqlite_store.connect(sample.db_path) as conn:
        sqlite_store.write_processed(conn, rows)


def add_error(sample: Sample, audio_file: str, generation: str, message: str, retryable: bool = False,
              error_type: str = 'OperationalError', stage: str = 'write') -> dict:
    row = {'audio_file': audio_file, 'generation': generation, 'stage': stage, 'error_type': error_type,
           'message': message, 'failed_at': schema.timestamp(dt.datetime.now(dt.timezone.utc).timestamp()),
           'retryable': retryable, 'attempts': 5 if retryable else 1}
    with sqlite_store.connect(sample.db_path) as conn:
        sqlite_store.write_errors(conn, [row])
    return row


LONG_LABELS = ('chirp', 'hum', 'tone')


def long_recording_events(seconds: float, every: float = 6.0, length: float = 2.5) -> list[tuple[float, float, str]]:
    """(start, end, label) of a long recording's events: one every ``every`` seconds, the labels in turn, and
    every fifth event overlapped by another label (two sounds at once: two lanes at the same time)."""
    spans = []
    for i in range(int(seconds // every)):
        start = i * every + 0.5
        label = LONG_LABELS[i % len(LONG_LABELS)]
        spans.append((start, start + length, label))
        if i % 5 == 0:
            spans.append((start + 1.0, start + length + 1.5, LONG_LABELS[(i + 1) % len(LONG_LABELS)]))
    return spans


def add_long_recording(sample: Sample, name: str = 'hour.wav', seconds: float = 3600.0, rate: int = 8000) -> dict:
    """A ``seconds``-long WAV (a quiet hiss, and a tone burst per event: written a minute at a time, cheaply), its
    result row and its events (``long_recording_events``). Returns the row, with its events under ``events``."""
    import soundfile

    spans = long_recording_events(seconds)
    path = os.path.join(sample.input_dir, name)
    rng = np.random.default_rng(5)
    pitch = {label: 500.0 + 700.0 * i for i, label in enumerate(LONG_LABELS)}
    total, block = int(seconds * rate), 60 * rate
    hiss = (0.01 * rng.standard_normal(block)).astype(np.float32)   # one minute of it, repeated
    with soundfile.SoundFile(path, 'w', rate, 1, 'PCM_16') as out:
        for first in range(0, total, block):
            chunk = hiss[:min(block, total - first)].copy()
            for start, end, label in spans:
                a, b = max(int(start * rate) - first, 0), min(int(end * rate) - first, len(chunk))
                if a < b:
                    t = (first + np.arange(a, b)) / rate
                    chunk[a:b] += 0.3 * np.sin(2 * np.pi * pitch[label] * t)
            out.write(chunk)
    png_path = os.path.join(os.path.dirname(sample.db_path), 'spectrograms', name + '.png')
    with open(png_path, 'wb') as f:   # the pipeline's whole-file image (the page draws ranges of its own)
        f.write(render_png(np.zeros(rate, np.float32), rate, name, SpectrogramStyle(min_width=480, max_width=800)))
    now = dt.datetime.now(dt.timezone.utc)
    row = {'audio_file': path, 'generation': str(os.stat(path).st_mtime_ns), 'spectrogram_image': png_path,
           'label': 'tone', 'confidence': 0.8, 'scores': [{'label': x, 'score': 0.8 if x == 'tone' else 0.1}
                                                          for x in LONG_LABELS],
           'model_version': MODEL_VERSION, 'duration_seconds': seconds, 'sample_rate_hz': rate, 'channels': 1,
           'event_count': len(spans), 'event_time': schema.timestamp(now.timestamp() - 90),
           'processed_at': schema.timestamp(now.timestamp())}
    events = [{'audio_file': path, 'generation': row['generation'], 'start_seconds': a, 'end_seconds': b,
               'label': label, 'confidence': 0.9, 'model_version': MODEL_VERSION, 'processed_at': row['processed_at']}
              for a, b, label in spans]
    with sqlite_store.connect(sample.db_path) as conn:
        sqlite_store.write_processed(conn, [{**row, schema.ROW_EVENTS_KEY: events}])
    return {**row, 'events': events}
