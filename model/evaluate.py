"""Evaluate an exported model directory exactly as the pipeline scores files.

Files go through ``SavedModelHandler.run_inference`` (the pipeline's own
windowing and batching); a file's prediction is the arg-max of the mean of its
windows' probabilities. The report holds accuracy, per-class precision, recall
and F1, and the confusion matrix; a PNG of the matrix is written beside it.

    python -m model.evaluate --model artifacts/models/fsdd --data ../shared/datasets/fsdd/recordings \
        --report artifacts/reports/fsdd.json
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Optional, Sequence

import numpy as np

from model import datasets
from model.datasets import LabelledAudio
from model.handlers import SavedModelHandler


def file_probabilities(handler: SavedModelHandler, model, audios: Sequence[LabelledAudio],
                       files_per_batch: int = 32) -> np.ndarray:
    """``[files, labels]``: each file's mean window probabilities, as the pipeline aggregates them."""
    rows = []
    for start in range(0, len(audios), files_per_batch):
        batch = [a.samples for a in audios[start:start + files_per_batch]]
        rows += [result.inference.mean(axis=0) for result in handler.run_inference(batch, model)]
    return np.stack(rows) if rows else np.zeros((0, len(handler.metadata.labels)), np.float32)


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, num_labels: int) -> np.ndarray:
    """Rows: true label; columns: predicted label."""
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(matrix, (true, predicted), 1)
    return matrix


def classification_report(matrix: np.ndarray, labels: Sequence[str]) -> dict:
    total = int(matrix.sum())
    correct = int(np.trace(matrix))
    per_class = {}
    for i, label in enumerate(labels):
        tp, predicted, support = int(matrix[i, i]), int(matrix[:, i].sum()), int(matrix[i].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {'precision': precision, 'recall': recall, 'f1': f1, 'support': support}
    return {'accuracy': correct / total if total else 0.0, 'files': total, 'correct': correct,
            'labels': list(labels), 'per_class': per_class, 'confusion_matrix': matrix.tolist()}


def evaluate_audio(model_dir: str, audios: Sequence[LabelledAudio]) -> dict:
    """Scores decoded files with the exported model; the report dict (no files written)."""
    handler = SavedModelHandler(model_dir)
    labels = list(handler.metadata.labels)
    unknown = sorted({a.label for a in audios} - set(labels))
    if unknown:
        raise ValueError(f'the data has labels the model does not know: {unknown}')
    probabilities = file_probabilities(handler, handler.load_model(), audios)
    true = np.array([labels.index(a.label) for a in audios], dtype=np.int64)
    predicted = probabilities.argmax(axis=1)
    report = classification_report(confusion_matrix(true, predicted, len(labels)), labels)
    report['model_version'] = handler.metadata.model_version
    report['misclassified'] = [{'file': a.source, 'label': a.label, 'predicted': labels[p]}
                               for a, p in zip(audios, predicted) if labels[p] != a.label]
    return report


def save_confusion_png(report: dict, path: str, title: str = '') -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    matrix = np.array(report['confusion_matrix'])
    labels = report['labels']
    size = 2.5 + 0.5 * len(labels)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap='Blues')
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha='center', va='center',
                color='white' if count > matrix.max() / 2 else 'black', fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha='right')
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel('predicted')
    ax.set_ylabel('true')
    ax.set_title(title or f'accuracy {report["accuracy"]:.2%} ({report["correct"]}/{report["files"]} files)')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(report: dict, report_path: str) -> tuple[str, str]:
    """Writes the JSON report and the confusion-matrix PNG beside it; returns both paths."""
    os.makedirs(os.path.dirname(os.path.abspath(report_path)), exist_ok=True)
    png_path = os.path.splitext(report_path)[0] + '_confusion.png'
    report = {**report, 'confusion_matrix_png': os.path.basename(png_path)}
    with open(report_path, 'w') as f:
        json.dump(report, f, indent=2)
    save_confusion_png(report, png_path)
    return report_path, png_path


def select_examples(data_dir: str, split: str, speaker: Optional[str]) -> list[datasets.Example]:
    layout, examples = datasets.scan(data_dir)
    if speaker:
        return datasets.hold_out_speaker(examples, speaker)[1]
    if split == 'all' or not all(e.split for e in examples):
        return examples
    return [e for e in examples if e.split == split]


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(prog='python -m model.evaluate', description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', required=True, help='exported model directory (local or gs://)')
    parser.add_argument('--data', required=True, help='folder-per-class or FSDD directory')
    parser.add_argument('--report', required=True, help='JSON report path; the PNG is written beside it')
    parser.add_argument('--split', choices=('test', 'train', 'all'), default='test',
                        help='for layouts with their own split (FSDD); others are evaluated whole')
    parser.add_argument('--speaker', help='FSDD: evaluate on every file of this speaker only')
    args = parser.parse_args(argv)

    from model.metadata import load_metadata
    rate = load_metadata(args.model).sample_rate_hz
    examples = select_examples(args.data, args.split, args.speaker)
    report = evaluate_audio(args.model, datasets.load(examples, rate))
    report['data'] = {'dir': args.data, 'split': 'speaker ' + args.speaker if args.speaker else args.split}
    report_path, png_path = write_report(report, args.report)
    print(f'accuracy {report["accuracy"]:.4f} ({report["correct"]}/{report["files"]} files); '
          f'report {report_path}, confusion matrix {png_path}')
    return report


if __name__ == '__main__':
    main()
