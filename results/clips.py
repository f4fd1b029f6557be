"""Reviewed detections as training data: one WAV per reviewed detection, in folders per class.

    python -m results.export --results demo/output/results.db --format clips --out reviewed/ [--wrong_folder F]
    python -m model.train --data reviewed/ --out artifacts/models/mine

``OUT/<label>/<file>_<start>-<end>s.wav`` for every detection reviewed as correct, ``OUT/background/<label>_<file>_
<start>-<end>s.wav`` for every one reviewed as wrong (``--wrong_folder`` names another folder): the
folder-per-class layout ``model.train`` reads as it is. A wrong detection is what the model mistook for a sound
of that label, so as ``background`` it teaches the model what is *not* any label (train without
``--background-class``, which would add a second class of that name). The clip is the detection's own seconds
(``--context`` adds some on each side), at the file's own sample rate where libsndfile reads the file (WAV,
FLAC, OGG, MP3...; only those seconds are read), else decoded whole at ``FALLBACK_RATE``.

A file replaced or deleted since it was reviewed (another generation) gives no clip: its seconds would be of
other audio. Those are counted and named in the summary, never written.
"""
from __future__ import annotations

import argparse
import io
import math
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import numpy as np

from results.reviews import CORRECT

DEFAULT_WRONG_FOLDER = 'background'
FALLBACK_RATE = 32000
MAX_CLIP_SECONDS = 60.0
_UNSAFE = re.compile(r'[^-\w.]+')


@dataclass
class ClipSummary:
    written: dict[str, int] = field(default_factory=dict)   # folder -> clips
    missing: list[str] = field(default_factory=list)        # why a reviewed detection has no clip

    @property
    def total(self) -> int:
        return sum(self.written.values())


def safe_name(text: str) -> str:
    """A file or folder name from a label or a file name: no separators, no leading dot, never empty."""
    name = _UNSAFE.sub('_', text).strip('._') or 'unnamed'
    return name[:120]


def clip_path(out_dir: str, review: dict[str, Any], wrong_folder: str = DEFAULT_WRONG_FOLDER) -> str:
    stem = safe_name(os.path.splitext(os.path.basename(review['audio_file'].rstrip('/')))[0])
    span = f'{review["start_seconds"]:.2f}-{review["end_seconds"]:.2f}s'
    if review['verdict'] == CORRECT:
        return os.path.join(out_dir, safe_name(review['label']), f'{stem}_{span}.wav')
    return os.path.join(out_dir, safe_name(wrong_folder), f'{safe_name(review["label"])}_{stem}_{span}.wav')


class Changed(Exception):
    """The audio file is not the version that was reviewed (replaced or deleted since)."""


def read_clip(uri: str, generation: str, start_seconds: float, end_seconds: float) -> tuple[np.ndarray, int]:
    """(samples [frames, channels] float32, sample rate) of ``[start_seconds, end_seconds)`` of that version."""
    import soundfile

    end_seconds = min(end_seconds, start_seconds + MAX_CLIP_SECONDS)
    if uri.startswith('gs://'):
        data = _gcs_bytes(uri, generation)
    else:
        from cloud.objects import local_generation

        path = uri[len('file://'):] if uri.startswith('file://') else uri
        if not os.path.isfile(path) or local_generation(path) != str(generation):
            raise Changed(f'{uri} changed or was deleted since it was reviewed')
        try:
            with soundfile.SoundFile(path) as f:
                rate = f.samplerate
                first = min(max(0, int(start_seconds * rate)), f.frames)
                f.seek(first)
                count = max(0, min(f.frames, int(math.ceil(end_seconds * rate))) - first)
                return f.read(count, dtype='float32', always_2d=True), rate
        except RuntimeError:  # soundfile.LibsndfileError: not a format libsndfile reads
            with open(path, 'rb') as f:
                data = f.read()
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype='float32', always_2d=True)
    except Exception:  # not a libsndfile format: through FFmpeg, mono at FALLBACK_RATE
        from audio.decode import decode

        mono, _ = decode(io.BytesIO(data), FALLBACK_RATE, max_duration_s=4 * 3600, size=len(data))
        samples, rate = np.asarray(mono, dtype=np.float32)[:, None], FALLBACK_RATE
    first = max(0, int(start_seconds * rate))
    return samples[first:max(first, int(math.ceil(end_seconds * rate)))], rate


def _gcs_bytes(uri: str, generation: str) -> bytes:
    from google.api_core import exceptions

    from cloud.objects import split_gcs, storage_client

    bucket, name = split_gcs(uri)
    try:
        return storage_client().bucket(bucket).blob(name, generation=int(generation)).download_as_bytes()
    except exceptions.NotFound as e:
        raise Changed(f'{uri} (generation {generation}) no longer exists') from e


def write_clips(reviews: Iterable[dict[str, Any]], out_dir: str, wrong_folder: str = DEFAULT_WRONG_FOLDER,
                context_seconds: float = 0.0) -> ClipSummary:
    """One WAV per reviewed detection under ``out_dir`` (see the module doc); what was written and what not."""
    import soundfile

    summary = ClipSummary()
    for review in reviews:
        start = max(0.0, float(review['start_seconds']) - context_seconds)
        end = float(review['end_seconds']) + context_seconds
        try:
            samples, rate = read_clip(review['audio_file'], review['generation'], start, end)
        except Changed as e:
            summary.missing.append(str(e))
            continue
        if not len(samples):
            summary.missing.append(f'{review["audio_file"]}: no audio at {start:.2f}-{end:.2f} s')
            continue
        path = clip_path(out_dir, review, wrong_folder)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        soundfile.write(path, samples, rate, subtype='PCM_16')
        folder = os.path.basename(os.path.dirname(path))
        summary.written[folder] = summary.written.get(folder, 0) + 1
    return summary


def export_clips(store, out_dir: str, wrong_folder: str = DEFAULT_WRONG_FOLDER, context_seconds: float = 0.0,
                 labels: Optional[set[str]] = None) -> ClipSummary:
    """``write_clips`` over every current verdict in the result store (only ``labels``, when given)."""
    from results.reviews import current_reviews

    reviews = [r for r in current_reviews(store) if labels is None or r['label'] in labels]
    return write_clips(reviews, out_dir, wrong_folder, context_seconds)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The clip options of ``python -m results.export --format clips``."""
    parser.add_argument('--wrong_folder', default=DEFAULT_WRONG_FOLDER,
                        help='clips: the folder for detections reviewed as wrong')
    parser.add_argument('--context', type=float, default=0.0,
                        help='clips: seconds of audio to add on each side of a detection')
    parser.add_argument('--labels', default='', help='clips: only these labels (comma-separated; default all)')


def run(store, out_dir: str, args: argparse.Namespace) -> ClipSummary:
    """Writes the clips and prints what was written (and what not, on stderr)."""
    labels = {x.strip() for x in args.labels.split(',') if x.strip()} or None
    summary = export_clips(store, out_dir, args.wrong_folder, args.context, labels)
    folders = ', '.join(f'{folder} {count}' for folder, count in sorted(summary.written.items()))
    print(f'{summary.total} reviewed clips written to {out_dir}' + (f' ({folders})' if folders else ''))
    for why in summary.missing:
        print(f'no clip: {why}', file=sys.stderr)
    return summary

