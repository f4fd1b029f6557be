"""A long file's samples on local disk (audio/spill.py): the same float32 samples as an in-memory decode.

The decoder spills past ``spill_bytes``; the tests force it with a threshold of a few KiB on short files.
"""
import io
import pickle

import numpy as np
import pytest
import soundfile as sf

from audio import encode
from audio.decode import DecodeError, decode
from audio.pcm import PcmSamples
from audio.spectrogram import SpectrogramStyle, render_png
from audio.spill import SpillError, SpilledSamples

RATE = 48000
SMALL = 16 << 10   # bytes: 4,096 float32 samples, far less than any file here


def _file(samples: np.ndarray, fmt: str, subtype: str, rate: int = RATE) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, rate, format=fmt, subtype=subtype)
    return out.getvalue()


def _decode(data: bytes, spill_bytes=None, pcm16: bool = True, max_s: float = 60.0):
    return decode(io.BytesIO(data), RATE, max_s, size=len(data), pcm16=pcm16, spill_bytes=spill_bytes)


def _bits(samples) -> np.ndarray:
    return np.asarray(samples, dtype=np.float32).view(np.int32)


def _noise(seconds: float, channels: int = 1, rate: int = RATE, seed: int = 0) -> np.ndarray:
    shape = (int(seconds * rate), channels) if channels > 1 else (int(seconds * rate),)
    return (np.random.default_rng(seed).standard_normal(shape) * 0.2).clip(-1, 1).astype(np.float32)


@pytest.mark.parametrize('channels,rate,fmt,subtype,stored', [
    (1, RATE, 'FLAC', 'PCM_24', np.float32),     # 24-bit: more bits than int16 holds
    (1, RATE, 'WAV', 'PCM_24', np.float32),
    (2, RATE, 'FLAC', 'PCM_16', np.float32),     # stereo, down-mixed block by block
    (1, 44100, 'FLAC', 'PCM_16', np.float32),    # resampled to 48 kHz (soxr's stream)
    (1, RATE, 'WAV', 'FLOAT', np.float32),
    (1, RATE, 'FLAC', 'PCM_16', np.int16),       # a recorder's file: its 16-bit samples as they are
])
def test_a_spilled_decode_is_the_plain_float32_decode_bit_for_bit(channels, rate, fmt, subtype, stored):
    data = _file(_noise(3.3, channels, rate), fmt, subtype, rate)
    spilled, info = _decode(data, spill_bytes=SMALL)
    plain, plain_info = _decode(data, pcm16=False)
    assert isinstance(spilled, SpilledSamples) and spilled.stored_dtype == stored
    assert type(plain) is np.ndarray and info == plain_info and len(spilled) == len(plain)
    assert spilled.nbytes == len(plain) * np.dtype(stored).itemsize
    np.testing.assert_array_equal(_bits(spilled), _bits(plain))
    for start, stop in ((0, 1), (5, 144_005), (65_000, 70_000), (len(plain) - 3, len(plain) + 10), (9, 9)):
        piece = spilled[start:stop]
        assert piece.dtype == np.float32 and piece.flags.writeable
        np.testing.assert_array_equal(piece.view(np.int32), plain[start:stop].view(np.int32))
    assert spilled[-1] == plain[-1] and spilled[7] == plain[7]


def test_a_file_under_the_threshold_stays_in_memory():
    data = _file(_noise(1.0), 'FLAC', 'PCM_24')
    samples, _ = _decode(data, spill_bytes=RATE * 4 + 1024)
    assert type(samples) is np.ndarray
    pcm, _ = _decode(_file(_noise(1.0), 'FLAC', 'PCM_16'), spill_bytes=RATE * 4)   # int16: half the bytes
    assert isinstance(pcm, PcmSamples)


@pytest.mark.parametrize('kind', ['m4a', 'webm'])
def test_a_decode_of_unknown_length_spills_once_it_passes_the_threshold(kind):
    """FFmpeg's formats may not say their length up front: the samples start in memory, then move to disk."""
    data = encode.encode(_noise(2.0) * 0.5, RATE, kind)
    spilled, info = _decode(data, spill_bytes=RATE * 4)   # a second of float32: passed half-way
    plain, plain_info = _decode(data)
    assert isinstance(spilled, SpilledSamples) and info == plain_info
    np.testing.assert_array_equal(_bits(spilled), _bits(plain))


def test_decode_errors_are_the_same_when_spilling():
    data = _file(_noise(3.0), 'WAV', 'PCM_24')
    with pytest.raises(DecodeError) as too_long:
        _decode(data, spill_bytes=SMALL, max_s=1.0)
    with pytest.raises(DecodeError) as truncated:
        _decode(data[:len(data) // 2], spill_bytes=SMALL)
    assert (too_long.value.error_type, truncated.value.error_type) == ('TooLong', 'Truncated')
    cut_flac = _file(_noise(3.0), 'FLAC', 'PCM_24')
    cut_flac = cut_flac[:len(cut_flac) * 2 // 3]
    with pytest.raises(DecodeError) as spilled:
        _decode(cut_flac, spill_bytes=SMALL)
    with pytest.raises(DecodeError) as in_memory:
        _decode(cut_flac)
    assert spilled.value.error_type == in_memory.value.error_type == 'Corrupt'   # libsndfile: FLAC cut mid-frame


def test_non_finite_samples_are_corrupt_when_spilled_too():
    samples = _noise(1.0)
    samples[RATE // 2] = np.nan
    with pytest.raises(DecodeError) as error:
        _decode(_file(samples, 'WAV', 'FLOAT'), spill_bytes=SMALL)
    assert error.value.error_type == 'Corrupt'


def test_spilled_samples_read_pickle_and_free_like_an_array():
    floats = SpilledSamples(np.float32)
    values = np.array([0.5, -1.0, 3.25, 0.0, 7.0], np.float32)
    floats.append(values[:2])
    floats.append(values[2:])
    assert len(floats) == 5 and floats.shape == (5,) and floats.size == 5 and floats.nbytes == 20
    assert floats[1:4].tolist() == [-1.0, 3.25, 0.0] and floats[-1] == 7.0 and floats[10:20].size == 0
    assert np.asarray(floats, dtype=np.float64).dtype == np.float64
    back = pickle.loads(pickle.dumps(floats))
    assert isinstance(back, SpilledSamples) and back[:].tolist() == values.tolist()

    pcm = SpilledSamples(np.int16)
    pcm.append(np.array([-32768, -1, 0, 16384, 32767], np.int16))
    expected = PcmSamples(np.array([-32768, -1, 0, 16384, 32767], np.int16))
    assert pcm.nbytes == 10 and _bits(pcm).tolist() == _bits(expected).tolist()
    with pytest.raises(TypeError):
        iter(pcm).__next__()
    with pytest.raises(IndexError):
        pcm[::2]
    with pytest.raises(IndexError):
        pcm[5]
    with pytest.raises(ValueError):
        SpilledSamples(np.float64)
    pcm.close()
    with pytest.raises(SpillError):   # the worker's trouble (transforms/failures.py), never the file's
        pcm[0:2]


def test_a_full_disk_is_a_spill_error(monkeypatch):
    samples = SpilledSamples(np.float32)

    class FullDisk:
        def write(self, data):
            raise OSError(28, 'No space left on device')

    monkeypatch.setattr(samples, '_file', FullDisk(), raising=False)
    with pytest.raises(SpillError, match='No space left'):
        samples.append(np.zeros(4, np.float32))


def test_the_spectrogram_of_spilled_samples_is_the_spectrogram_of_its_floats():
    data = _file(_noise(3.0), 'FLAC', 'PCM_24')
    spilled, _ = _decode(data, spill_bytes=SMALL)
    plain, _ = _decode(data)
    style = SpectrogramStyle(frames_per_block=64, max_width=300)   # many blocks, pooled columns
    assert render_png(spilled, RATE, 'a.flac', style) == render_png(plain, RATE, 'a.flac', style)
