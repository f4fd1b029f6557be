"""Per-label confidence thresholds learnt from reviews: how sure the model must be for a detection to be right.

A classifier's confidence is not the probability that a detection is right. For each label with enough
reviews of both kinds (``min_correct`` correct and ``min_wrong`` wrong, 10 each by default) this fits a
logistic curve, P(correct | confidence) = 1 / (1 + exp(-(intercept + slope * confidence))), by maximum
likelihood (as BirdNET's review does), and reads off the confidence at which that probability reaches each
target precision (90, 95, 99 %). Every detection at or above such a threshold is at least that likely to be
right, so the precision of the detections kept is at least the target (if the curve fits).

    python -m results.thresholds --results demo/output/results.db --out thresholds.json [--precision 0.95]

The file's ``min_confidence`` maps each fitted label to its threshold at ``--precision``; the pipeline reads
it with ``--label_thresholds thresholds.json`` (other labels keep ``--event_min_confidence``).
``labels`` holds every fitted label's curve, review counts and thresholds at every target; ``not_fitted``
says why the other reviewed labels have none yet.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

import numpy as np

PRECISIONS = (0.9, 0.95, 0.99)
DEFAULT_PRECISION = 0.95
DEFAULT_MIN_REVIEWS = 10
CORRECT, WRONG = 'correct', 'wrong'
# A small L2 penalty on the slope: reviews that the confidence separates perfectly (common with 10 + 10) still
# give a finite, steep curve instead of a diverging fit.
RIDGE = 1e-3


@dataclass(frozen=True)
class LabelFit:
    """One label's curve and what it was fitted on."""
    label: str
    intercept: float
    slope: float
    correct: int
    wrong: int

    def probability(self, confidence: float | np.ndarray) -> Any:
        """P(correct) at a confidence (or an array of them)."""
        return 1.0 / (1.0 + np.exp(-(self.intercept + self.slope * np.asarray(confidence, dtype=np.float64))))

    def threshold(self, precision: float) -> Optional[float]:
        """The least confidence in [0, 1] at which P(correct) reaches ``precision``; None when it never does."""
        if self.probability(0.0) >= precision:
            return 0.0
        if self.slope <= 0 or self.probability(1.0) < precision:
            return None
        return float((math.log(precision / (1 - precision)) - self.intercept) / self.slope)

    def to_dict(self, precisions: Sequence[float] = PRECISIONS) -> dict[str, Any]:
        return {'correct': self.correct, 'wrong': self.wrong, 'intercept': self.intercept, 'slope': self.slope,
                'thresholds': {_key(p): _rounded(self.threshold(p)) for p in precisions}}


def fit_logistic(confidences: Sequence[float], correct: Sequence[bool], iterations: int = 100) -> tuple[float, float]:
    """(intercept, slope) of the maximum-likelihood logistic curve, by Newton's method (a few steps suffice)."""
    x = np.asarray(confidences, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    design = np.stack([np.ones_like(x), x], axis=1)
    penalty = np.diag([0.0, RIDGE])
    beta = np.zeros(2)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        gradient = design.T @ (y - p) - penalty @ beta
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-8:
            break
    return float(beta[0]), float(beta[1])


def fit_labels(reviews: Iterable[dict[str, Any]], min_correct: int = DEFAULT_MIN_REVIEWS,
               min_wrong: int = DEFAULT_MIN_REVIEWS) -> tuple[dict[str, LabelFit], dict[str, str]]:
    """({label: its fit} for labels with enough reviews, {label: why not} for the others).

    ``reviews`` are rows of the reviews table (one verdict per detection): ``label``, ``confidence``, ``verdict``.
    """
    by_label: dict[str, list[tuple[float, bool]]] = {}
    for row in reviews:
        if row.get('verdict') in (CORRECT, WRONG) and row.get('confidence') is not None:
            by_label.setdefault(row['label'], []).append((float(row['confidence']), row['verdict'] == CORRECT))
    fits, not_fitted = {}, {}
    for label, pairs in sorted(by_label.items()):
        right = sum(1 for _, ok in pairs if ok)
        wrong = len(pairs) - right
        if right < min_correct or wrong < min_wrong:
            not_fitted[label] = (f'{right} correct and {wrong} wrong reviews: needs at least {min_correct} correct '
                                 f'and {min_wrong} wrong')
            continue
        intercept, slope = fit_logistic([c for c, _ in pairs], [ok for _, ok in pairs])
        fits[label] = LabelFit(label, intercept, slope, right, wrong)
    return fits, not_fitted


def thresholds_document(fits: dict[str, LabelFit], not_fitted: dict[str, str],
                        precision: float = DEFAULT_PRECISION, precisions: Sequence[float] = PRECISIONS,
                        min_correct: int = DEFAULT_MIN_REVIEWS, min_wrong: int = DEFAULT_MIN_REVIEWS,
                        model_version: Optional[str] = None) -> dict[str, Any]:
    """What ``--out`` writes: ``min_confidence`` (what the pipeline reads) and every label's fit."""
    targets = sorted(set(precisions) | {precision})
    reached = {label: fit.threshold(precision) for label, fit in fits.items()}
    return {
        'precision': precision,
        'min_confidence': {label: _rounded(t) for label, t in reached.items() if t is not None},
        'labels': {label: fit.to_dict(targets) for label, fit in fits.items()},
        'not_fitted': {**not_fitted, **{label: f'P(correct) never reaches {precision:g} below confidence 1'
                                        for label, t in reached.items() if t is None}},
        'min_reviews': {CORRECT: min_correct, WRONG: min_wrong},
        'model_version': model_version,
    }


def parse_label_thresholds(text: str) -> dict[str, float]:
    """{label: minimum confidence} from a thresholds file: this module's document (its ``min_confidence``), or a
    plain JSON object of label -> number. Raises ValueError saying what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f'not JSON ({e})') from e
    if isinstance(data, dict) and 'min_confidence' in data:
        data = data['min_confidence']
    if not isinstance(data, dict):
        raise ValueError('expected a JSON object of label -> minimum confidence (or python -m results.thresholds '
                         'output)')
    out = {}
    for label, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f'the minimum confidence of {label!r} must be a number in [0, 1], got {value!r}')
        out[str(label)] = float(value)
    return out


def _key(precision: float) -> str:
    return f'{precision:g}'


def _rounded(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(float(value), 4)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from results.reviews import read_reviews   # the stores load only for the command

    parser = argparse.ArgumentParser(prog='python -m results.thresholds', description=__doc__.split('\n\n')[0])
    parser.add_argument('--results', required=True,
                        help='the pipeline\'s --output_table: a SQLite .db file or a BigQuery PROJECT:DATASET.TABLE')
    parser.add_argument('--out', required=True, help='JSON file to write (for the pipeline\'s --label_thresholds)')
    parser.add_argument('--precision', type=float, default=DEFAULT_PRECISION,
                        help=f'the precision min_confidence is chosen for (default {DEFAULT_PRECISION})')
    parser.add_argument('--min_correct', type=int, default=DEFAULT_MIN_REVIEWS,
                        help='correct reviews a label needs before it is fitted')
    parser.add_argument('--min_wrong', type=int, default=DEFAULT_MIN_REVIEWS,
                        help='wrong reviews a label needs before it is fitted')
    parser.add_argument('--model_version', help='only reviews of this model\'s detections (default: all)')
    args = parser.parse_args(argv)
    if not 0.5 <= args.precision < 1:
        parser.error('--precision must be in [0.5, 1)')
    reviews = read_reviews(args.results)
    if args.model_version:
        reviews = [r for r in reviews if r.get('model_version') == args.model_version]
    fits, not_fitted = fit_labels(reviews, args.min_correct, args.min_wrong)
    document = thresholds_document(fits, not_fitted, args.precision, PRECISIONS, args.min_correct, args.min_wrong,
                                   args.model_version)
    with open(args.out, 'w') as f:
        json.dump(document, f, indent=2)
        f.write('\n')
    for label, fit in fits.items():
        shown = ', '.join(f'{p:.0%}: {"–" if fit.threshold(p) is None else f"{fit.threshold(p):.3f}"}'
                          for p in PRECISIONS)
        print(f'{label}: {fit.correct} correct / {fit.wrong} wrong; thresholds {shown}')
    for label, why in document['not_fitted'].items():
        print(f'{label}: no threshold ({why})')
    print(f'wrote {args.out}: {len(document["min_confidence"])} label(s) at precision {args.precision:g}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
