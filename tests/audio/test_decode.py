import io

import numpy as np
import pytest
import soundfile as sf

from audio import encode, synth
from audio.decode import DecodeError, _Output, _TooLong, decode
from tests.helpers import decode_bytes

RATE = 16000


@pytest.mark.parametrize('kind', encode.ALL_KINDS)
def test_every_format_decodes_to_mono_at_the_target_rate(kind):
    source_rate = 24000 if kind == 'opus' else 22050
    sweep = synth.sine_sweep(2.0, source_rate)
    samples, info = decode_bytes(encode.encode(sweep, source_rate, kind), RATE, max_duration_s=60)
    assert samples.dtype == np.float32 and samples.ndim == 1
    # Lossy codecs pad a little (encoder delay, frame size): allow 0.1 s.
    assert abs(len(samples) / RATE - 2.0) < 0.1, info
    assert abs(info.duration_seconds - 2.0) < 0.1
    assert info.sample_rate_hz in (source_rate, 48000)  # Opus always decodes at 48 kHz
    assert 0.2 < np.max(np.abs(samples)) < 1.0


@pytest.mark.parametrize('subtype', ['PCM_U8', 'PCM_16', 'PCM_24', 'PCM_32', 'FLOAT', 'DOUBLE'])
def test_wav_widths_decode_to_the_same_signal(subtype):
    sweep = synth.sine_sweep(1.0, RATE)
    buf = io.BytesIO()
    sf.write(buf, sweep, RATE, format='WAV', subtype=subtype)
    samples, info = decode_bytes(buf.getvalue(), RATE, 60)
    tolerance = 0.01 if subtype == 'PCM_U8' else 1e-4
    np.testing.assert_allclose(samples, sweep, atol=tolerance)
    assert info.sample_rate_hz == RATE and info.channels == 1


def test_stereo_is_mixed_down_and_the_original_layout_reported():
    left = synth.sine_sweep(1.0, 44100)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    samples, info = decode_bytes(encode.encode(stereo, 44100, 'flac'), RATE, 60)
    assert info.channels == 2 and info.sample_rate_hz == 44100
    assert len(samples) == RATE
    # The mix of a signal and silence is half the signal.
    reference, _ = decode_bytes(encode.encode(left, 44100, 'flac'), RATE, 60)
    np.testing.assert_allclose(samples, reference / 2, atol=1e-3)


def test_resampling_keeps_a_tone_at_its_frequency():
    t = np.arange(48000) / 48000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    samples, _ = decode_bytes(encode.encode(tone, 48000, 'wav'), RATE, 60)
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * RATE / len(samples) - 1000) < 2


@pytest.mark.parametrize('data,error_type', [
    (b'', 'EmptyFile'),
    (b'plain text, not audio\n' * 40, 'NotAudio'),
    (b'\x00' * 4096, 'NotAudio'),
])
def test_non_audio_inputs_raise_a_clear_error(data, error_type):
    with pytest.raises(DecodeError) as e:
        decode_bytes(data, RATE, 60)
    assert e.value.error_type == error_type and str(e.value)


def _image(fmt: str) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new('RGB', (8, 8)).save(out, fmt)
    return out.getvalue()


def _silent_video() -> bytes:
    import io

    import av

    out = io.BytesIO()
    with av.open(out, 'w', format='mp4') as container:
        stream = container.add_stream('mpeg4', rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, 'yuv420p'
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format='rgb24')
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return out.getvalue()


@pytest.mark.parametrize('data,message', [
    (_image('PNG'), 'not an audio file (looks like a PNG image)'),
    (_image('JPEG'), 'not an audio file (looks like a JPEG image)'),
    (b'plain text, not audio\n' * 40, 'not an audio file (looks like a text file)'),
    (b'%PDF-1.4\n' + bytes(range(256)) * 4, 'not an audio file (looks like a PDF document)'),
    (b'\x00' * 4096, 'not an audio file (unknown format)'),
])
def test_a_file_that_is_not_audio_says_what_it_looks_like(data, message):
    with pytest.raises(DecodeError) as e:
        decode_bytes(data, RATE, 60)
    assert (e.value.error_type, str(e.value)) == ('NotAudio', message)


def test_a_video_without_sound_says_so():
    with pytest.raises(DecodeError) as e:
        decode_bytes(_silent_video(), RATE, 60)
    assert e.value.error_type == 'NotAudio' and str(e.value).startswith('a video without sound (')


@pytest.mark.parametrize('kind,error_type', [('wav', 'Truncated'), ('wav24', 'Truncated'), ('aiff', 'Truncated'),
                                             ('mp3', 'Corrupt'), ('m4a', 'Corrupt'), ('ogg', 'Corrupt')])
def test_truncated_files_are_reported_not_silently_shortened(kind, error_type):
    data = encode.encode(synth.sine_sweep(3.0, 22050), 22050, kind)
    cut = data[:len(data) // 3] if kind.startswith(('wav', 'aiff')) else data[:400]
    with pytest.raises(DecodeError) as e:
        decode_bytes(cut, RATE, 60)
    assert e.value.error_type == error_type


def test_header_only_wav_is_truncated():
    data = encode.encode(synth.sine_sweep(1.0, RATE), RATE, 'wav')
    with pytest.raises(DecodeError) as e:
        decode_bytes(data[:44], RATE, 60)
    assert e.value.error_type in ('Truncated', 'NoAudio')


class _CountingStream(io.BytesIO):
    """Counts the bytes read, to prove a too-long file is rejected without being decoded."""

    def __init__(self, data):
        super().__init__(data)
        self.bytes_read = 0

    def read(self, n=-1):
        chunk = super().read(n)
        self.bytes_read += len(chunk)
        return chunk


# An .m4a written by FFmpeg keeps its index (moov) at the end: the demuxer must read past the data to find
# the duration, so only the "not decoded" part is checked for it.
@pytest.mark.parametrize('kind,max_fraction_read', [('wav', 0.5), ('flac', 0.5), ('m4a', 1.0)])
def test_too_long_is_rejected_from_the_header_without_decoding(kind, max_fraction_read):
    data = encode.encode(synth.sine_sweep(30.0, 8000), 8000, kind)
    stream = _CountingStream(data)
    with pytest.raises(DecodeError) as e:
        decode(stream, RATE, max_duration_s=5, size=len(data))
    assert e.value.error_type == 'TooLong'
    assert 'not decoded' in str(e.value)
    assert stream.bytes_read <= len(data) * max_fraction_read


def test_output_stops_at_the_limit_when_the_header_gives_no_length():
    out = _Output(RATE, RATE, expected_frames=None, max_out=RATE)  # 1 s allowed
    out.add(np.zeros(RATE // 2, np.float32))
    with pytest.raises(_TooLong):
        for _ in range(10):
            out.add(np.zeros(RATE // 2, np.float32))
    assert len(out._buffer) <= RATE + 64  # never grew past the limit


def test_output_buffer_grows_when_length_unknown():
    out = _Output(8000, RATE, expected_frames=None, max_out=60 * RATE)
    block = np.ones(4000, np.float32)
    for _ in range(50):
        out.add(block)
    samples = out.finish()
    assert abs(len(samples) - 50 * 4000 * 2) <= 64
