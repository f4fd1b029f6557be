"""The feature front end: waveform windows -> log-mel patches, in TensorFlow (numpy twin: model/serving.py).

It runs inside the exported SavedModel, so training and serving compute
features with the same code (no train/serve skew), in RunInference and on
Vertex AI alike.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where it runs (log_mel), so the config and the mel matrix serve without it
    import tensorflow as tf


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate_hz: int = 16000
    frame_length: int = 400   # 25 ms
    frame_step: int = 160     # 10 ms
    fft_length: int = 512
    n_mels: int = 64
    fmin_hz: float = 20.0
    fmax_hz: float = 8000.0
    log_offset: float = 1e-6

    def to_dict(self) -> dict:
        return asdict(self)


def hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_weight_matrix(config: FeatureConfig) -> np.ndarray:
    """``[fft_length // 2 + 1, n_mels]``: HTK-spaced triangles, drawn in Hz, unnormalised.

    This is librosa's ``filters.mel(htk=True, norm=None)``, transposed.
    ``tf.signal.linear_to_mel_weight_matrix`` differs (triangles drawn on the
    mel axis, DC bin dropped) by up to ~1.6% per band, so it is not used.
    """
    fft_hz = np.linspace(0.0, config.sample_rate_hz / 2, config.fft_length // 2 + 1)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(config.fmin_hz), hz_to_mel(config.fmax_hz), config.n_mels + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, np.newaxis] - fft_hz[np.newaxis, :]
    rising = -ramps[:-2] / widths[:-1, np.newaxis]
    falling = ramps[2:] / widths[1:, np.newaxis]
    return np.maximum(0.0, np.minimum(rising, falling)).T.astype(np.float32)


def log_mel(waveform: tf.Tensor, config: FeatureConfig) -> tf.Tensor:
    """``[batch, samples]`` float32 -> ``[batch, frames, n_mels]`` natural-log mel power.

    Frames are not centred (no padding) and start at sample 0, the window is a
    periodic Hann of ``frame_length`` samples, the mel scale is HTK with
    unnormalised triangles. librosa's ``melspectrogram(center=False, htk=True,
    norm=None, power=2, win_length=frame_length, n_fft=fft_length)`` computes
    the same power, except that it centres the window inside each ``fft_length``
    frame: its frame ``t`` is this function's frame ``t`` of the signal without
    its first ``(fft_length - frame_length) // 2`` samples (the tests check this
    to 1e-3 in log power).
    """
    import tensorflow as tf

    stft = tf.signal.stft(waveform, frame_length=config.frame_length, frame_step=config.frame_step,
                          fft_length=config.fft_length, window_fn=tf.signal.hann_window, pad_end=False)
    power = tf.math.square(tf.math.abs(stft))
    mel = tf.tensordot(power, tf.constant(mel_weight_matrix(config)), axes=1)
    return tf.math.log(mel + config.log_offset)
