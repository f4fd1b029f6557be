"""Decode any common audio format into mono float32 at a target rate, in blocks.

libsndfile (soundfile) reads WAV in every width, FLAC, Ogg Vorbis/Opus, AIFF
and MP3 without FFmpeg; PyAV (FFmpeg) reads the rest (AAC/.m4a, WebM, ...).
Both read from a seekable file object in blocks, down-mix and resample each
block (soxr's streaming resampler), so only the output at the target rate is
ever held whole: a long 48 kHz stereo file is never loaded whole. The duration
limit is checked against the header before decoding, and again while decoding
for formats whose header does not say.

With ``pcm16`` a file that is mono 16-bit (or narrower) PCM at the target rate keeps its samples as int16
(``audio.pcm.PcmSamples``: half the memory, read as the same float32 values); with ``spill_bytes`` a long
file's samples go to local disk as they are decoded (``audio.spill.SpilledSamples``, the same values again).
"""
from __future__ import annotations

import re
from typing import Literal, Optional, Protocol, overload

import numpy as np
import soundfile as sf
import soxr

from audio.pcm import PCM16_SUBTYPES, PcmSamples
from audio.records import AudioInfo
from audio.signal import Signal
from audio.spill import SpilledSamples

BLOCK_FRAMES = 1 << 16
# libsndfile's parser log says so when a chunk claims more bytes than the file has.
_SHORT_CHUNK = re.compile(r'^(data|SSND)\s*:\s*\d+ \(should be \d+\)|> file length', re.MULTILINE)
# Leading bytes of the containers we read: a file that starts like one but will not decode is damaged
# (usually truncated), not "not audio".
_MAGIC = ((b'RIFF', 'WAV'), (b'fLaC', 'FLAC'), (b'OggS', 'Ogg'), (b'ID3', 'MP3'), (b'\xff\xfb', 'MP3'),
          (b'\xff\xf3', 'MP3'), (b'\xff\xf2', 'MP3'), (b'FORM', 'AIFF'), (b'\x1aE\xdf\xa3', 'WebM/Matroska'))


class DecodeError(Exception):
    """An input that cannot become audio; ``error_type`` goes into the error row."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type


class _Output:
    """Resamples mono blocks to the target rate into one growing buffer (float32, or int16 PCM kept as it is);
    past ``spill_bytes`` the samples go to a temporary file instead (``audio.spill``)."""

    def __init__(self, in_rate: int, out_rate: int, expected_frames: Optional[int], max_out: int,
                 dtype: type = np.float32, spill_bytes: Optional[int] = None):
        self._resampler = None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype='float32')
        assert self._resampler is None or dtype == np.float32, 'resampled samples are float32'
        self._dtype = np.dtype(dtype)
        # The most samples held in memory: up to the limit of duration, or to the spill threshold.
        self._memory_max = max_out + 64 if spill_bytes is None else min(max_out + 64,
                                                                        spill_bytes // self._dtype.itemsize)
        expected = int(expected_frames * out_rate / in_rate) + 64 if expected_frames else None
        self._spilled: Optional[SpilledSamples] = None
        if expected is not None and expected > self._memory_max:   # known long: to disk from the start
            self._spilled = SpilledSamples(self._dtype)
        capacity = expected if expected is not None else out_rate * 10
        self._buffer: np.ndarray = np.empty(0 if self._spilled else min(capacity, self._memory_max), dtype=dtype)
        self._size = 0
        self._max_out = max_out

    def add(self, mono: np.ndarray, last: bool = False) -> None:
        block = mono if self._resampler is None else self._resampler.resample_chunk(mono, last=last)
        end = self._size + len(block)
        if end > self._max_out + 64:
            raise _TooLong()
        if self._spilled is None and end > self._memory_max:   # longer than its header said, or it said nothing
            self._spilled = SpilledSamples(self._dtype)
            self._spilled.append(self._buffer[:self._size])
            self._buffer = np.empty(0, dtype=self._dtype)
        if self._spilled is not None:
            self._spilled.append(block)
        else:
            if end > len(self._buffer):
                grown = np.empty(max(end, min(2 * len(self._buffer), self._memory_max)), dtype=self._dtype)
                grown[:self._size] = self._buffer[:self._size]
                self._buffer = grown
            self._buffer[self._size:end] = block
        self._size = end

    def finish(self) -> Signal:
        if self._resampler is not None:
            self.add(np.zeros(0, dtype=np.float32), last=True)
        if self._spilled is not None:
            return self._spilled
        samples = self._buffer[:self._size]
        return PcmSamples(samples) if samples.dtype == np.int16 else samples


class _TooLong(Exception):
    pass


class ByteStream(Protocol):
    """What the decoders read: a seekable binary stream (a file, ``io.BytesIO``, a Cloud Storage reader, or
    ``cloud.objects.WatchedStream`` around one)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...


@overload
def decode(stream: ByteStream, target_rate: int, max_duration_s: float, size: Optional[int] = None,
           pcm16: Literal[False] = False, spill_bytes: None = None) -> tuple[np.ndarray, AudioInfo]: ...


@overload
def decode(stream: ByteStream, target_rate: int, max_duration_s: float, size: Optional[int] = None,
           pcm16: bool = False, spill_bytes: Optional[int] = None) -> tuple[Signal, AudioInfo]: ...


def decode(stream: ByteStream, target_rate: int, max_duration_s: float, size: Optional[int] = None,
           pcm16: bool = False, spill_bytes: Optional[int] = None) -> tuple[Signal, AudioInfo]:
    """Returns (mono float32 samples at ``target_rate``, info about the original).

    ``pcm16``: a mono file of 16-bit (or narrower) PCM at ``target_rate`` comes back as ``PcmSamples``, the
    same values held in half the memory. ``spill_bytes``: samples that would hold more than that come back as
    ``SpilledSamples`` (on local disk, ``audio.spill``), the same values again. Without either the samples are
    always a float32 array.
    Raises DecodeError with error_type EmptyFile, NotAudio, Truncated, NoAudio or TooLong.
    """
    if size == 0 or _is_empty(stream):
        raise DecodeError('EmptyFile', 'the file is empty (0 bytes)')
    max_out = int(max_duration_s * target_rate)
    try:
        try:
            samples, info = _decode_soundfile(stream, target_rate, max_out, pcm16, spill_bytes)
        except _NotForSoundfile:
            stream.seek(0)
            samples, info = _decode_pyav(stream, target_rate, max_out, spill_bytes)
    except _TooLong:
        raise DecodeError('TooLong',
                          f'longer than the {max_duration_s:g} s limit (stopped decoding at the limit)') from None
    if info.duration_seconds > max_duration_s:
        raise DecodeError('TooLong', f'{info.duration_seconds:.1f} s is longer than the {max_duration_s:g} s limit')
    if len(samples) == 0:
        raise DecodeError('NoAudio', 'the file decodes to zero samples')
    if not _holds_integers(samples) and not _all_finite(samples):   # integers are finite
        raise DecodeError('Corrupt', 'the decoded audio contains NaN or infinite samples')
    return samples, info


def _holds_integers(samples: Signal) -> bool:
    return isinstance(samples, PcmSamples) or (isinstance(samples, SpilledSamples)
                                               and samples.stored_dtype == np.int16)


def _all_finite(samples: Signal, chunk: int = 1 << 20) -> bool:
    # In slices: np.isfinite over a whole hour at 16 kHz would allocate a 58 MB mask at the memory peak.
    return all(np.isfinite(samples[i:i + chunk]).all() for i in range(0, len(samples), chunk))


def _is_empty(stream: ByteStream) -> bool:
    start = stream.tell()
    head = stream.read(1)
    stream.seek(start)
    return not head


class _NotForSoundfile(Exception):
    pass


def _decode_soundfile(stream: ByteStream, target_rate: int, max_out: int, pcm16: bool = False,
                      spill_bytes: Optional[int] = None) -> tuple[Signal, AudioInfo]:
    try:
        f = sf.SoundFile(stream)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise _NotForSoundfile() from e
    with f:
        rate, channels, frames = f.samplerate, f.channels, f.frames
        header_seconds = frames / rate if frames > 0 else 0.0
        if frames > 0 and header_seconds * target_rate > max_out + 64:
            raise DecodeError('TooLong', f'{header_seconds:.1f} s is longer than the '
                                         f'{max_out / target_rate:g} s limit (from the header; not decoded)')
        # Kept as int16 only where that is exactly the float32 decode (audio/pcm.py): one channel, no resampling.
        as_pcm = pcm16 and channels == 1 and rate == target_rate and f.subtype in PCM16_SUBTYPES
        out = _Output(rate, target_rate, frames if frames > 0 else None, max_out,
                      dtype=np.int16 if as_pcm else np.float32, spill_bytes=spill_bytes)
        read = 0
        try:
            for block in f.blocks(blocksize=BLOCK_FRAMES, dtype='int16' if as_pcm else 'float32', always_2d=True):
                read += len(block)
                out.add(block.mean(axis=1) if channels > 1 else block[:, 0])
        except sf.LibsndfileError as e:
            raise DecodeError('Corrupt', f'{f.format} data is corrupt after {read / rate:.2f} s: {e}') from e
        samples = out.finish()
        fmt = f'{f.format}/{f.subtype}'
        # libsndfile quietly returns what is there when data stops early; its parser log tells.
        if _SHORT_CHUNK.search(f.extra_info) or (frames > 0 and read < frames):
            raise DecodeError('Truncated', f'{fmt}: the file ends before the audio data its header announces '
                                           f'({read / rate:.2f} s present)')
    return samples, AudioInfo(sample_rate_hz=rate, channels=channels, duration_seconds=read / rate)


def _decode_pyav(stream: ByteStream, target_rate: int, max_out: int, spill_bytes: Optional[int] = None
                 ) -> tuple[Signal, AudioInfo]:
    import av  # FFmpeg, only for what libsndfile cannot read

    try:
        container = av.open(stream, mode='r')
    except (av.error.FFmpegError, ValueError, UnicodeDecodeError) as e:
        kind = _sniff(stream)
        if kind:
            raise DecodeError('Corrupt', f'starts like a {kind} file but cannot be decoded, probably truncated or '
                                         f'damaged ({_first_line(e)})') from e
        raise DecodeError('NotAudio', _not_audio(_sniff_other(stream))) from e
    with container:
        if not container.streams.audio:
            raise DecodeError('NotAudio', _no_audio_stream(container))
        audio = container.streams.audio[0]
        rate = audio.codec_context.sample_rate or audio.rate
        channels = audio.codec_context.channels or 1
        seconds = _pyav_duration(container, audio)
        if seconds and seconds * target_rate > max_out + 64:
            raise DecodeError('TooLong', f'{seconds:.1f} s is longer than the {max_out / target_rate:g} s limit '
                                         '(from the header; not decoded)')
        resampler = av.AudioResampler(format='flt', layout='mono', rate=target_rate)
        out = _Output(target_rate, target_rate, int(seconds * target_rate) if seconds else None, max_out,
                      spill_bytes=spill_bytes)
        decoded_frames = 0
        try:
            for frame in container.decode(audio):
                decoded_frames += frame.samples
                for mono in resampler.resample(frame):
                    out.add(mono.to_ndarray().reshape(-1))
            for mono in resampler.resample(None):
                out.add(mono.to_ndarray().reshape(-1))
        except av.error.FFmpegError as e:
            raise DecodeError('Corrupt', f'{audio.codec_context.name} data is corrupt: {_first_line(e)}') from e
        samples = out.finish()
        codec = f'{container.format.name}/{audio.codec_context.name}'
    if decoded_frames == 0:
        raise DecodeError('NoAudio', f'{codec}: no audio frames could be decoded')
    return samples, AudioInfo(sample_rate_hz=int(rate), channels=int(channels),
                              duration_seconds=decoded_frames / rate)


def _pyav_duration(container, audio) -> Optional[float]:
    if audio.duration is not None and audio.time_base is not None:
        return float(audio.duration * audio.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _sniff(stream: ByteStream) -> Optional[str]:
    stream.seek(0)
    head = stream.read(12)
    if head[4:8] == b'ftyp':
        return 'MP4/M4A'
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


# Leading bytes of common files that are not audio, to say what an upload is instead.
_OTHER_MAGIC = ((b'\x89PNG', 'a PNG image'), (b'\xff\xd8\xff', 'a JPEG image'), (b'GIF8', 'a GIF image'),
                (b'%PDF', 'a PDF document'), (b'PK\x03\x04', 'a ZIP archive (or an Office document)'),
                (b'\x1f\x8b', 'a gzip archive'))


def _not_audio(looks_like: Optional[str]) -> str:
    return f'not an audio file (looks like {looks_like})' if looks_like else 'not an audio file (unknown format)'


def _sniff_other(stream: ByteStream) -> Optional[str]:
    """What a file that no decoder opens looks like instead (an image, a document, text), or None."""
    stream.seek(0)
    head = stream.read(512)
    kind = next((kind for magic, kind in _OTHER_MAGIC if head.startswith(magic)), None)
    if kind is None and head and b'\x00' not in head:
        try:
            head.decode('utf-8')
            kind = 'a text file'
        except UnicodeDecodeError as e:   # a multi-byte character cut at the end of the 512 bytes is still text
            kind = 'a text file' if e.start >= len(head) - 3 else None
    return kind


def _no_audio_stream(container) -> str:
    """FFmpeg opened the file but found no sound in it: say what it is in the user's words."""
    name = container.format.name
    if name.endswith('_pipe') or name in ('gif', 'image2', 'apng'):   # FFmpeg reads images as "piped" sequences
        return _not_audio(f'a {name.removesuffix("_pipe").upper()} image')
    if container.streams.video:
        return f'a video without sound ({container.format.long_name or name}): no audio track to classify'
    return _not_audio(container.format.long_name or name)


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__
