"""A compact CNN over log-mel patches: trains on a CPU in minutes, infers fast in batches.

Everything between the waveform and the probabilities is a layer of the model,
so the exported SavedModel computes its own features (no train/serve skew).
SpecAugment masking is a layer too, active only while training: the exported
serving graph passes features through it unchanged.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from model.features import FeatureConfig, log_mel


class LogMel(keras.layers.Layer):
    """The feature front end as a Keras layer, so it is saved inside the model graph."""

    def __init__(self, config: FeatureConfig | None = None, **kwargs):
        super().__init__(**kwargs)
        self.config = config or FeatureConfig()

    def call(self, waveform):
        return log_mel(waveform, self.config)

    def get_config(self):
        return {**super().get_config(), 'config': self.config.to_dict()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(FeatureConfig(**config.pop('config')), **config)


class Standardise(keras.layers.Layer):
    """Per-example zero mean, unit variance over the whole patch: insensitive to recording gain."""

    def call(self, x):
        mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        std = tf.math.reduce_std(x, axis=[1, 2], keepdims=True)
        return (x - mean) / (std + 1e-3)


class SpecAugment(keras.layers.Layer):
    """Masks random bands of time frames and mel bins while training (Park et al., 2019).

    Masked values become 0, the patch mean after ``Standardise``. At inference
    (``training=False``, which is how the SavedModel is exported) it is the identity.
    """

    def __init__(self, time_masks: int = 2, max_time_frames: int = 12, freq_masks: int = 2,
                 max_freq_bins: int = 8, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.time_masks, self.max_time_frames = time_masks, max_time_frames
        self.freq_masks, self.max_freq_bins = freq_masks, max_freq_bins
        self.seed = seed
        self._generator = keras.random.SeedGenerator(seed)

    def _band_mask(self, batch, length, count, max_width):
        """``[batch, length]`` float mask: 0 inside ``count`` random bands, 1 elsewhere."""
        positions = tf.range(length)[tf.newaxis, :]
        keep = tf.ones((batch, length), tf.bool)
        for _ in range(count):
            width = keras.random.randint((batch, 1), 0, max_width + 1, seed=self._generator)
            start = keras.random.randint((batch, 1), 0, tf.maximum(length - max_width, 1), seed=self._generator)
            keep &= ~((positions >= start) & (positions < start + width))
        return tf.cast(keep, tf.float32)

    def call(self, features, training=None):
        if not training:
            return features
        shape = tf.shape(features)
        batch, frames, bins = shape[0], shape[1], shape[2]
        time_keep = self._band_mask(batch, frames, self.time_masks, self.max_time_frames)
        freq_keep = self._band_mask(batch, bins, self.freq_masks, self.max_freq_bins)
        return features * time_keep[:, :, tf.newaxis] * freq_keep[:, tf.newaxis, :]

    def get_config(self):
        return {**super().get_config(), 'time_masks': self.time_masks, 'max_time_frames': self.max_time_frames,
                'freq_masks': self.freq_masks, 'max_freq_bins': self.max_freq_bins, 'seed': self.seed}


BLOCK_FILTERS = (1, 2, 4, 4)   # filters of each conv block, in multiples of ``width``


def build_classifier(num_labels: int, window_samples: int, features: FeatureConfig | None = None,
                     width: int = 16, dropout: float = 0.2, spec_augment: bool = False,
                     seed: int | None = None) -> keras.Model:
    """waveform ``[batch, window_samples]`` -> probabilities ``[batch, num_labels]``.

    Four conv blocks (3x3 conv, batch norm, ReLU, 2x2 max pool) with ``width``
    x (1, 2, 4, 4) filters over the log-mel patch, global average pooling, one
    softmax layer. At width 16: 61k weights (10 labels) and about 20M multiply-adds per
    one-second window (98 frames x 64 mel bins); the fourth block widens the
    receptive field to ~300 ms, a spoken digit's length.
    """
    features = features or FeatureConfig()
    frames = 1 + (window_samples - features.frame_length) // features.frame_step
    min_size = 2 ** len(BLOCK_FILTERS)   # each block halves both axes
    if frames < min_size or features.n_mels < min_size:
        raise ValueError(f'a {window_samples}-sample window gives {frames} frames x {features.n_mels} mel bins; '
                         f'the CNN needs at least {min_size} of each')
    waveform = keras.Input(shape=(window_samples,), dtype='float32', name='waveform')
    x = LogMel(features, name='log_mel')(waveform)
    x = Standardise(name='standardise')(x)
    if spec_augment:
        x = SpecAugment(seed=seed, name='spec_augment')(x)
    x = keras.layers.Reshape((-1, features.n_mels, 1))(x)
    for i, filters in enumerate(width * m for m in BLOCK_FILTERS):
        x = keras.layers.Conv2D(filters, 3, padding='same', use_bias=False, name=f'conv{i}')(x)
        x = keras.layers.BatchNormalization(name=f'bn{i}')(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(dropout, seed=seed)(x)
    probabilities = keras.layers.Dense(num_labels, activation='softmax', name='probabilities')(x)
    return keras.Model(waveform, probabilities, name='audio_cnn')
