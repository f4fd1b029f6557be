"""Fitting the Keras classifier: decoded files -> windows exactly as serving cuts them -> trained weights.

``model.train`` is the command that drives it (data in, exported and evaluated model out).

Each file contributes the windows ``model.handlers.iter_windows`` would cut at
serving time (a short file is one zero-padded window), each labelled with the
file's label. Augmentation perturbs those windows (``model.augment``) and, in
the graph, their features (SpecAugment). The file-level score at serving is the
mean of its windows' probabilities; ``model.evaluate`` measures exactly that.
"""
from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from model.architecture import build_classifier
from model.augment import Augmentation, cut_window
from model.datasets import LabelledAudio
from model.features import FeatureConfig
from model.metadata import ModelMetadata


@dataclass(frozen=True)
class TrainConfig:
    sample_rate_hz: int = 16000
    window_samples: int = 16000
    hop_samples: int = 8000
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 3e-3
    width: int = 16
    dropout: float = 0.2
    seed: int = 0
    augmentation: Augmentation = field(default_factory=Augmentation)

    @property
    def features(self) -> FeatureConfig:
        return FeatureConfig(sample_rate_hz=self.sample_rate_hz, fmax_hz=self.sample_rate_hz / 2)

    def windowing(self, labels: Sequence[str] = ('?',)) -> ModelMetadata:
        """The model contract's windowing for this config: one source for how files are cut."""
        return ModelMetadata(model_version='', labels=tuple(labels), sample_rate_hz=self.sample_rate_hz,
                             window_samples=self.window_samples, hop_samples=self.hop_samples)

    def summary(self) -> dict:
        data = asdict(self)
        data['augmentation'] = self.augmentation.names()
        return data


class WindowBatches(keras.utils.PyDataset):
    """Batches of (windows, label indices), reshuffled every epoch, augmented if asked.

    The random state of a batch depends only on (seed, epoch, batch index), so a
    run is reproducible whatever order Keras asks for batches in.
    """

    def __init__(self, audios: Sequence[LabelledAudio], labels: Sequence[str], config: TrainConfig,
                 augmentation: Optional[Augmentation] = None, shuffle: bool = True):
        super().__init__()
        index = {label: i for i, label in enumerate(labels)}
        self._audios = audios
        self._config = config
        self._augmentation = augmentation or Augmentation()
        self._shuffle = shuffle
        windowing = config.windowing(labels)
        self._items = np.array([(a, w * config.hop_samples, index[audio.label]) for a, audio in enumerate(audios)
                                for w in range(windowing.window_count(len(audio.samples)))], dtype=np.int64)
        self._epoch = 0
        self._order = self._permutation()

    @property
    def num_windows(self) -> int:
        return len(self._items)

    def _permutation(self) -> np.ndarray:
        if not self._shuffle:
            return np.arange(len(self._items))
        return np.random.default_rng([self._config.seed, self._epoch]).permutation(len(self._items))

    def __len__(self) -> int:
        return math.ceil(len(self._items) / self._config.batch_size)

    def __getitem__(self, batch_index: int):
        size = self._config.batch_size
        rows = self._items[self._order[batch_index * size:(batch_index + 1) * size]]
        rng = np.random.default_rng([self._config.seed, self._epoch, batch_index, 1])
        windows = np.stack([cut_window(self._audios[a].samples, start, self._config.window_samples,
                                       self._config.hop_samples, self._augmentation, rng)
                            for a, start, _ in rows])
        return windows, rows[:, 2]

    def on_epoch_end(self):
        self._epoch += 1
        self._order = self._permutation()


def train_classifier(train: Sequence[LabelledAudio], labels: Sequence[str], config: TrainConfig,
                     validation: Sequence[LabelledAudio] = (), verbose: Optional[int] = None) -> keras.Model:
    """Trains from scratch; deterministic for a given ``config.seed`` on a given machine."""
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    batches = WindowBatches(train, labels, config, config.augmentation)
    steps = config.epochs * len(batches)
    model = build_classifier(len(labels), config.window_samples, config.features, width=config.width,
                             dropout=config.dropout, spec_augment=config.augmentation.mask, seed=config.seed)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss='sparse_categorical_crossentropy',
                  metrics=['accuracy'])
    validation_batches = WindowBatches(validation, labels, config, shuffle=False) if validation else None
    print(f'training on {len(train)} files ({batches.num_windows} windows of {config.window_samples} samples), '
          f'{len(labels)} labels, {config.epochs} epochs, {model.count_params():,} weights, '
          f'augmentation: {", ".join(config.augmentation.names()) or "none"}', flush=True)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2   # a progress bar on a terminal, one line per epoch in logs
    model.fit(batches, epochs=config.epochs, validation_data=validation_batches, verbose=verbose)
    return model
