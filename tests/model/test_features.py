"""The TensorFlow front end against librosa's log-mel on the same signal."""
import librosa
import numpy as np
import tensorflow as tf

from audio.synth import sine_sweep
from model.features import FeatureConfig, log_mel, mel_weight_matrix

# Natural-log mel power; float32 STFTs agree to ~1e-5 here, so 1e-3 leaves room for other CPUs' FFTs.
LOG_MEL_TOLERANCE = 1e-3


def librosa_log_mel(signal: np.ndarray, config: FeatureConfig) -> np.ndarray:
    power = librosa.feature.melspectrogram(
        y=signal, sr=config.sample_rate_hz, n_fft=config.fft_length, hop_length=config.frame_step,
        win_length=config.frame_length, window='hann', center=False, power=2.0, n_mels=config.n_mels,
        fmin=config.fmin_hz, fmax=config.fmax_hz, htk=True, norm=None)
    return np.log(power.T + config.log_offset)


def test_mel_filterbank_equals_librosa():
    for config in (FeatureConfig(), FeatureConfig(sample_rate_hz=8000, fmax_hz=4000, n_mels=40)):
        expected = librosa.filters.mel(sr=config.sample_rate_hz, n_fft=config.fft_length, n_mels=config.n_mels,
                                       fmin=config.fmin_hz, fmax=config.fmax_hz, htk=True, norm=None)
        np.testing.assert_allclose(mel_weight_matrix(config), expected.T, atol=1e-6)


def test_log_mel_matches_librosa_on_the_same_signal():
    config = FeatureConfig()
    rng = np.random.default_rng(0)
    signal = (sine_sweep(1.0, config.sample_rate_hz) + 0.05 * rng.normal(size=config.sample_rate_hz))
    signal = signal.astype(np.float32)
    expected = librosa_log_mel(signal, config)
    # librosa centres the 400-sample window in each 512-sample frame; see log_mel's docstring.
    offset = (config.fft_length - config.frame_length) // 2
    ours = log_mel(tf.constant(signal[np.newaxis, offset:]), config).numpy()[0]
    frames = min(len(ours), len(expected))
    assert frames >= 95
    np.testing.assert_allclose(ours[:frames], expected[:frames], atol=LOG_MEL_TOLERANCE)


def test_log_mel_shape_and_silence():
    config = FeatureConfig()
    out = log_mel(tf.zeros([3, 16000]), config).numpy()
    assert out.shape == (3, 1 + (16000 - config.frame_length) // config.frame_step, config.n_mels)
    np.testing.assert_allclose(out, np.log(config.log_offset), rtol=1e-6)
