"""The feature front end: waveform windows -> log-mel patches, in TensorFlow.

It runs inside the exported SavedModel, so training and serving compute
features with the same code (no train/serve skew), in RunInference and on
Vertex AI alike.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

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


def log_mel(waveform: tf.Tensor, config: FeatureConfig) -> tf.Tensor:
    """``[batch, samples]`` float32 -> ``[batch, frames, n_mels]`` natural-log mel power.

    Frames are not centred (no padding), the window is periodic Hann, the mel
    scale is HTK with unnormalised triangles: librosa's
    ``melspectrogram(center=False, htk=True, norm=None, power=2)`` computes the same.
    """
    stft = tf.signal.stft(waveform, frame_length=config.frame_length, frame_step=config.frame_step,
                          fft_length=config.fft_length, window_fn=tf.signal.hann_window, pad_end=False)
    power = tf.math.square(tf.math.abs(stft))
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=config.n_mels, num_spectrogram_bins=config.fft_length // 2 + 1,
        sample_rate=config.sample_rate_hz, lower_edge_hertz=config.fmin_hz, upper_edge_hertz=config.fmax_hz)
    mel = tf.tensordot(power, mel_matrix, axes=1)
    return tf.math.log(mel + config.log_offset)
