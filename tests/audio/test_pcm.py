"""16-bit PCM held as int16 (audio/pcm.py): the same float32 samples as a float32 decode, bit for bit."""
import io
import pickle

import numpy as np
import pytest
import soundfile as sf

from audio import encode
from audio.decode import DecodeError, decode
from audio.pcm import PCM16_SUBTYPES, PcmSamples
from audio.spectrogram import SpectrogramStyle, power_spectrogram, render_png

RATE = 48000
EVERY_INT16 = np.arange(-32768, 32768, dtype=np.int16)


def _file(samples: np.ndarray, fmt: str, subtype: str, rate: int = RATE) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, rate, format=fmt, subtype=subtype)
    return out.getvalue()


def _decode(data: bytes, pcm16: bool, rate: int = RATE, max_s: float = 60.0):
    return decode(io.BytesIO(data), rate, max_s, size=len(data), pcm16=pcm16)


def _bits(samples) -> np.ndarray:
    return np.asarray(samples, dtype=np.float32).view(np.int32)


@pytest.mark.parametrize('fmt,subtype', [('WAV', 'PCM_16'), ('FLAC', 'PCM_16'), ('AIFF', 'PCM_16'),
                                         ('WAV', 'PCM_U8'), ('FLAC', 'PCM_S8'), ('AIFF', 'PCM_S8'),
                                         ('WAV', 'ULAW'), ('WAV', 'ALAW')])
def test_every_value_reads_as_the_float32_decode(fmt, subtype):
    assert subtype in PCM16_SUBTYPES
    data = _file(np.random.default_rng(0).permutation(EVERY_INT16), fmt, subtype)
    compact, info = _decode(data, pcm16=True)
    floats, float_info = _decode(data, pcm16=False)
    assert isinstance(compact, PcmSamples) and type(floats) is np.ndarray and floats.dtype == np.float32
    assert info == float_info and len(compact) == len(floats) == len(EVERY_INT16)
    assert compact.nbytes * 2 == floats.nbytes
    np.testing.assert_array_equal(_bits(compact), _bits(floats))
    for start, stop in ((0, 1), (5, 144_005), (65_000, 70_000), (len(floats) - 3, len(floats) + 10)):
        piece = compact[start:stop]
        assert piece.dtype == np.float32
        np.testing.assert_array_equal(piece.view(np.int32), floats[start:stop].view(np.int32))


@pytest.mark.parametrize('channels,rate,fmt,subtype', [
    (2, RATE, 'WAV', 'PCM_16'),        # down-mixed: the mean of two channels is not a 16-bit value
    (1, 44100, 'FLAC', 'PCM_16'),      # resampled
    (1, RATE, 'WAV', 'PCM_24'),        # more bits than int16 holds
    (1, RATE, 'WAV', 'FLOAT'),
    (1, RATE, 'OGG', 'VORBIS'),
])
def test_everything_else_stays_float32(channels, rate, fmt, subtype):
    mono = np.sin(np.arange(rate) * 0.01).astype(np.float32) * 0.5
    data = _file(np.stack([mono] * channels, axis=1) if channels > 1 else mono, fmt, subtype, rate)
    compact, _ = _decode(data, pcm16=True)
    floats, _ = _decode(data, pcm16=False)
    assert type(compact) is np.ndarray and compact.dtype == np.float32
    np.testing.assert_array_equal(compact.view(np.int32), floats.view(np.int32))


def test_a_mono_16bit_wav_of_the_project_encoder_is_kept_as_pcm():
    samples = np.sin(np.arange(RATE * 2) * 0.02).astype(np.float32) * 0.9
    decoded, info = _decode(encode.encode(samples, RATE, 'wav'), pcm16=True)
    assert isinstance(decoded, PcmSamples) and info.duration_seconds == 2.0


def test_decode_errors_are_the_same_for_pcm():
    data = _file(EVERY_INT16, 'WAV', 'PCM_16')
    with pytest.raises(DecodeError) as too_long:
        _decode(data, pcm16=True, max_s=1.0)
    with pytest.raises(DecodeError) as truncated:
        _decode(data[:len(data) // 2], pcm16=True)
    assert (too_long.value.error_type, truncated.value.error_type) == ('TooLong', 'Truncated')


def test_pcm_samples_read_as_float32_slices():
    pcm = PcmSamples(np.array([-32768, -1, 0, 1, 16384, 32767], np.int16))
    assert len(pcm) == 6 and pcm.shape == (6,) and pcm.size == 6 and pcm.nbytes == 12
    assert pcm[2:5].tolist() == [0.0, 2.0 ** -15, 0.5] and pcm[0] == -1.0
    assert np.asarray(pcm).dtype == np.float32 and np.asarray(pcm, dtype=np.float64)[-1] == 32767 / 32768
    back = pickle.loads(pickle.dumps(pcm))
    np.testing.assert_array_equal(back.pcm, pcm.pcm)
    with pytest.raises(TypeError):
        iter(pcm).__next__()
    with pytest.raises(ValueError):
        PcmSamples(np.zeros(3, np.float32))


def test_the_spectrogram_of_pcm_is_the_spectrogram_of_its_floats():
    pcm = PcmSamples(np.random.default_rng(1).integers(-20000, 20000, RATE * 3, dtype=np.int16))
    floats = np.asarray(pcm)
    style = SpectrogramStyle(frames_per_block=64, max_width=300)   # many blocks, pooled columns
    (power, group), (expected, expected_group) = power_spectrogram(pcm, style), power_spectrogram(floats, style)
    assert group == expected_group and np.array_equal(power, expected)
    assert render_png(pcm, RATE, 'a.wav', style) == render_png(floats, RATE, 'a.wav', style)
    short = PcmSamples(np.arange(100, dtype=np.int16))
    assert render_png(short, RATE, 's.wav') == render_png(np.asarray(short), RATE, 's.wav')
