"""A compact CNN over log-mel patches: trains on a CPU in minutes, infers fast in batches."""
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


def build_classifier(num_labels: int, window_samples: int, features: FeatureConfig | None = None,
                     width: int = 32, dropout: float = 0.2) -> keras.Model:
    """waveform ``[batch, window_samples]`` -> probabilities ``[batch, num_labels]``."""
    features = features or FeatureConfig()
    waveform = keras.Input(shape=(window_samples,), dtype='float32', name='waveform')
    x = LogMel(features, name='log_mel')(waveform)
    # Per-example standardisation makes the model insensitive to recording gain.
    x = keras.layers.Lambda(lambda t: (t - tf.reduce_mean(t, axis=[1, 2], keepdims=True)) /
                            (tf.math.reduce_std(t, axis=[1, 2], keepdims=True) + 1e-3), name='standardise')(x)
    x = keras.layers.Reshape((-1, features.n_mels, 1))(x)
    for i, filters in enumerate((width, width * 2, width * 4)):
        x = keras.layers.Conv2D(filters, 3, padding='same', use_bias=False, name=f'conv{i}')(x)
        x = keras.layers.BatchNormalization(name=f'bn{i}')(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(dropout)(x)
    probabilities = keras.layers.Dense(num_labels, activation='softmax', name='probabilities')(x)
    return keras.Model(waveform, probabilities, name='audio_cnn')
