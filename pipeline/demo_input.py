"""Writes the demo input folder that ``make run`` processes.

Clips of each demo sound class in a dozen formats, sample rates and channel
counts, under awkward names, plus a few broken files (empty, truncated, not
audio) that must come out as error rows while the run carries on.

    python -m pipeline.demo_input --out demo/input [--per-class 6] [--seed 7]
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from audio import encode, synth

RATES = (8000, 16000, 22050, 44100, 48000)
NAMES = ('clip {i}', 'clip_{i}', 'ünïcødé {i}', '#{i} what?', '-dash {i}')


def write_demo_input(out: str, per_class: int = 6, seed: int = 7) -> list[str]:
    rng = np.random.default_rng(seed)
    written = []
    for c, label in enumerate(synth.DEMO_CLASSES):
        folder = os.path.join(out, label)
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            kind = encode.ALL_KINDS[(c * per_class + i) % len(encode.ALL_KINDS)]
            rate = 24000 if kind == 'opus' else RATES[(c + i) % len(RATES)]
            samples = synth.make(label, rng, float(rng.uniform(1.0, 4.0)), rate)
            if i % 3 == 0:  # some stereo files
                samples = np.stack([samples, samples * 0.8], axis=1)
            name = NAMES[i % len(NAMES)].format(i=i) + '.' + encode.extension(kind)
            written.append(encode.write(os.path.join(folder, name), samples, rate, kind))
    broken = os.path.join(out, 'broken')
    os.makedirs(broken, exist_ok=True)
    good_wav = encode.encode(synth.make('tone', rng, 2.0, 16000), 16000, 'wav')
    for name, data in (('empty.wav', b''), ('truncated.wav', good_wav[:len(good_wav) // 3]),
                       ('notes.mp3', b'these are meeting notes, not audio\n' * 20)):
        path = os.path.join(broken, name)
        with open(path, 'wb') as f:
            f.write(data)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True)
    parser.add_argument('--per-class', type=int, default=6)
    parser.add_argument('--seed', type=int, default=7)
    args = parser.parse_args()
    written = write_demo_input(args.out, args.per_class, args.seed)
    print(f'wrote {len(written)} demo files to {args.out}')


if __name__ == '__main__':
    main()
