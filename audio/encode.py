"""Write audio in the formats the pipeline reads: for the demo input, tests and benchmarks.

libsndfile (soundfile) writes WAV in every width, FLAC, Ogg Vorbis/Opus, AIFF
and MP3; PyAV (FFmpeg) writes AAC in .m4a and Opus in .webm.
"""
from __future__ import annotations

import io

import numpy as np
import soundfile as sf

# extension -> (soundfile format, subtype); None where PyAV writes it.
SOUNDFILE_FORMATS = {
    'wav': ('WAV', 'PCM_16'),
    'wav8': ('WAV', 'PCM_U8'),
    'wav24': ('WAV', 'PCM_24'),
    'wav32': ('WAV', 'PCM_32'),
    'wavf': ('WAV', 'FLOAT'),
    'flac': ('FLAC', 'PCM_16'),
    'ogg': ('OGG', 'VORBIS'),
    'opus': ('OGG', 'OPUS'),
    'aiff': ('AIFF', 'PCM_16'),
    'mp3': ('MP3', 'MPEG_LAYER_III'),
}
PYAV_FORMATS = {'m4a': ('mp4', 'aac'), 'webm': ('webm', 'libopus')}
ALL_KINDS = tuple(SOUNDFILE_FORMATS) + tuple(PYAV_FORMATS)


def extension(kind: str) -> str:
    """The file extension for a kind ('wav24' is written as .wav)."""
    return 'wav' if kind.startswith('wav') else kind


def encode(samples: np.ndarray, rate: int, kind: str) -> bytes:
    """Encodes float samples (``[n]`` mono or ``[n, channels]``) as ``kind``; returns the bytes."""
    samples = np.asarray(samples, dtype=np.float32)
    if kind in SOUNDFILE_FORMATS:
        fmt, subtype = SOUNDFILE_FORMATS[kind]
        buf = io.BytesIO()
        sf.write(buf, samples, rate, format=fmt, subtype=subtype)
        return buf.getvalue()
    if kind in PYAV_FORMATS:
        return _encode_pyav(samples, rate, *PYAV_FORMATS[kind])
    raise ValueError(f'unknown audio kind {kind!r}; known: {", ".join(ALL_KINDS)}')


def write(path: str, samples: np.ndarray, rate: int, kind: str) -> str:
    with open(path, 'wb') as f:
        f.write(encode(samples, rate, kind))
    return path


def _encode_pyav(samples: np.ndarray, rate: int, container_format: str, codec: str) -> bytes:
    import av  # FFmpeg; imported lazily because most callers only need libsndfile

    mono = samples if samples.ndim == 1 else samples.mean(axis=1)
    out_rate = 48000 if codec == 'libopus' else rate
    buf = io.BytesIO()
    with av.open(buf, mode='w', format=container_format) as container:
        stream = container.add_stream(codec, rate=out_rate)
        assert isinstance(stream, av.AudioStream)  # an audio codec gives an audio stream
        stream.layout = 'mono'
        resampler = av.AudioResampler(format=stream.format.name, layout='mono', rate=out_rate)
        frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format='flt', layout='mono')
        frame.sample_rate = rate
        for resampled in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(resampled):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()
