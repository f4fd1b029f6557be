"""The training command: fit, export and evaluate an audio classifier from labelled audio on disk.

    python -m model.train --data DIR --out DIR [--epochs N --seed S --augment all ...]

DIR is folder-per-class (``DIR/<label>/*.wav``) or the Free Spoken Digit
Dataset layout (``{label}_{speaker}_{index}.wav``, with its own split: index
0-4 test, 5-49 train). Folder-per-class data is split at random per class
(``--test-fraction``). The exported model is then evaluated on the held-out
files through the pipeline's own handler, and the figures are written into its
``metadata.json`` (``metrics``) and ``OUT/evaluation.json`` (+ PNG).
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import os
import time
from typing import Any, Optional, Sequence

from model import datasets
from model.background import background_examples, typical_class_size
from model.augment import ALL_AUGMENTATIONS, Augmentation
from model.datasets import LabelledAudio
from model.evaluate import evaluate_audio, write_report
from model.export import export_model
from model.fit import TrainConfig, train_classifier
from model.metadata import BACKGROUND_LABEL, ModelMetadata, load_metadata, save_metadata

REPORT_FILE = 'evaluation.json'


def data_summary(audios: Sequence[LabelledAudio], rate: int) -> dict:
    counts = collections.Counter(a.label for a in audios)
    seconds = sum(len(a.samples) for a in audios) / rate
    return {'files': len(audios), 'seconds': round(seconds, 1), 'per_label': dict(sorted(counts.items()))}


def train_and_export(train: Sequence[LabelledAudio], test: Sequence[LabelledAudio], labels: Sequence[str],
                     config: TrainConfig, out_dir: str, model_version: str, description: dict,
                     verbose: Optional[int] = None) -> ModelMetadata:
    """Trains, exports to ``out_dir``, evaluates the export on ``test``; the final metadata."""
    started = time.monotonic()
    classifier = train_classifier(train, labels, config, verbose=verbose)
    train_seconds = time.monotonic() - started
    metadata = ModelMetadata(
        model_version=model_version, labels=tuple(labels), sample_rate_hz=config.sample_rate_hz,
        window_samples=config.window_samples, hop_samples=config.hop_samples,
        features=config.features.to_dict(),
        training={**description, 'config': config.summary(), 'train': data_summary(train, config.sample_rate_hz),
                  'test': data_summary(test, config.sample_rate_hz), 'train_seconds': round(train_seconds, 1),
                  'architecture': f'compact CNN, {classifier.count_params()} weights'})
    export_model(classifier, metadata, out_dir)
    metadata = load_metadata(out_dir)   # with the serving files the export wrote and checked
    if not test:
        return metadata
    report = evaluate_audio(out_dir, test)
    if not out_dir.startswith('gs://'):
        write_report(report, os.path.join(out_dir, REPORT_FILE))
    metrics = {'test_accuracy': report['accuracy'], 'test_files': report['files'],
               'per_class_recall': {k: v['recall'] for k, v in report['per_class'].items()}}
    if BACKGROUND_LABEL in labels:
        metrics.update(accuracy_without_background(report))
    metadata = dataclasses.replace(metadata, metrics=metrics)
    save_metadata(metadata, out_dir)
    print(f'{model_version}: held-out accuracy {report["accuracy"]:.4f} ({report["correct"]}/{report["files"]} '
          f'files), trained in {train_seconds:.0f} s; exported to {out_dir}', flush=True)
    return metadata


def accuracy_without_background(report: dict) -> dict:
    """Accuracy over the files of the real labels only (a real sound called background counts as wrong).

    With a background class the test set also holds background clips; this is the figure comparable with a
    model trained without one, on the same real-label files.
    """
    labels = report['labels']
    matrix = report['confusion_matrix']
    real = [i for i, label in enumerate(labels) if label != BACKGROUND_LABEL]
    files = sum(sum(matrix[i]) for i in real)
    correct = sum(matrix[i][i] for i in real)
    return {'test_accuracy_real_labels': correct / files if files else 0.0, 'test_files_real_labels': files}


def with_background(train: Sequence[LabelledAudio], test: Sequence[LabelledAudio], labels: Sequence[str],
                    config: TrainConfig) -> tuple[list[LabelledAudio], list[LabelledAudio], list[str]]:
    """Adds the ``background`` class (``model.background``): twice as many clips as a typical class has files."""
    if BACKGROUND_LABEL in labels:
        raise ValueError(f'the data already has a label called {BACKGROUND_LABEL!r}')
    rate, window = config.sample_rate_hz, config.window_samples
    train_bg = background_examples(train, labels, rate, window, 2 * typical_class_size(train), config.seed,
                                   'background/train')
    test_bg = background_examples(test, labels, rate, window, typical_class_size(test), config.seed + 1,
                                  'background/test')
    return list(train) + train_bg, list(test) + test_bg, list(labels) + [BACKGROUND_LABEL]


def default_version(out_dir: str) -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d-%H%M%S')
    return f'{os.path.basename(out_dir.rstrip("/")) or "model"}-{stamp}'


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog='python -m model.train', description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', required=True, help='folder-per-class or FSDD directory')
    parser.add_argument('--out', required=True, help='model directory to write (local or gs://)')
    parser.add_argument('--epochs', type=int, default=defaults.epochs)
    parser.add_argument('--seed', type=int, default=defaults.seed)
    parser.add_argument('--augment', default='none',
                        help=f'comma-separated: {", ".join(ALL_AUGMENTATIONS)}; or all, none (default)')
    parser.add_argument('--batch-size', type=int, default=defaults.batch_size)
    parser.add_argument('--learning-rate', type=float, default=defaults.learning_rate)
    parser.add_argument('--width', type=int, default=defaults.width, help='filters in the first conv layer')
    parser.add_argument('--sample-rate', type=int, default=defaults.sample_rate_hz, help='model sample rate, Hz')
    parser.add_argument('--window-samples', type=int, default=defaults.window_samples)
    parser.add_argument('--hop-samples', type=int, default=defaults.hop_samples)
    parser.add_argument('--test-fraction', type=float, default=0.2,
                        help='folder-per-class: share of each class held out for evaluation')
    parser.add_argument('--hold-out-speaker', help='FSDD: train on every other speaker, test on this one')
    parser.add_argument('--background-class', action='store_true',
                        help=f'add a "{BACKGROUND_LABEL}" class (silence, low noise, hum and the quiet parts of the '
                             f'training audio) so that the gaps between sounds are not forced into a real label')
    parser.add_argument('--model-version', help='default: <out dir name>-<UTC time>')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> ModelMetadata:
    args = parse_args(argv)
    config = TrainConfig(sample_rate_hz=args.sample_rate, window_samples=args.window_samples,
                         hop_samples=args.hop_samples, epochs=args.epochs, batch_size=args.batch_size,
                         learning_rate=args.learning_rate, width=args.width, seed=args.seed,
                         augmentation=Augmentation.parse(args.augment))
    layout, examples = datasets.scan(args.data)
    if args.hold_out_speaker:
        train_examples, test_examples = datasets.hold_out_speaker(examples, args.hold_out_speaker)
        split = f'leave-one-speaker-out: {args.hold_out_speaker}'
    else:
        train_examples, test_examples = datasets.split(examples, args.test_fraction, args.seed)
        split = 'dataset split (index 0-4 test)' if layout == datasets.FSDD else f'random {args.test_fraction:g}'
    labels = sorted({e.label for e in examples})
    print(f'{args.data}: {layout} layout, {len(train_examples)} train / {len(test_examples)} test files, '
          f'labels {labels}', flush=True)
    train = datasets.load(train_examples, config.sample_rate_hz)
    test = datasets.load(test_examples, config.sample_rate_hz)
    description: dict[str, Any] = {'data': os.path.abspath(args.data), 'layout': layout, 'split': split}
    if args.background_class:
        train, test, labels = with_background(train, test, labels, config)
        description['background_class'] = True
    return train_and_export(train, test, labels, config, args.out, args.model_version or default_version(args.out),
                            description)


if __name__ == '__main__':
    main()
