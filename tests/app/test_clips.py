"""A range of a long recording: chosen within the file and bounded, read from its first frame, drawn for itself."""
import numpy as np
import soundfile

from app import clips
from app.clips import MAX_RANGE_SECONDS, Span, clamp, first_span, read_span, shifted
from audio.spectrogram import time_ticks


def test_ranges_stay_inside_the_file_and_bounded():
    assert clamp(-5, 30, 3600) == Span(0, 30)
    assert clamp(3590, 4000, 3600) == Span(3590, 3600)
    assert clamp(100, 100, 3600) == Span(100, 101)            # at least a second
    assert clamp(0, 3600, 3600) == Span(0, MAX_RANGE_SECONDS)  # at most MAX_RANGE_SECONDS
    assert first_span(3600) == Span(0, clips.RANGE_SECONDS)
    assert clips.is_long(3600) and not clips.is_long(30) and not clips.is_long(None)


def test_earlier_and_later_move_by_one_range_and_stop_at_the_ends():
    assert shifted(Span(60, 120), 1, 3600) == Span(120, 180)
    assert shifted(Span(60, 120), -1, 3600) == Span(0, 60)
    assert shifted(Span(10, 70), -1, 3600) == Span(0, 60)
    assert shifted(Span(3500, 3560), 1, 3600) == Span(3540, 3600)


def test_a_range_is_read_from_its_own_frames(tmp_path):
    rate = 8000
    ramp = (np.arange(rate * 30) % 1000 / 1000).astype(np.float32)   # a known value at each frame
    path = str(tmp_path / 'long.wav')
    soundfile.write(path, np.stack([ramp, ramp], axis=1), rate, subtype='FLOAT')  # stereo: read as mono
    samples, got_rate = read_span(path, Span(12.5, 14.0))
    assert got_rate == rate and len(samples) == int(1.5 * rate)
    assert np.allclose(samples, ramp[int(12.5 * rate):14 * rate])


def test_the_time_axis_of_a_range_reads_in_the_files_own_time():
    assert time_ticks(60.0, 720.0)[:3] == [(0.0, '12:00'), (10.0, '12:10'), (20.0, '12:20')]
    assert time_ticks(60.0, 3590.0)[0] == (0.0, '59:50') and time_ticks(60.0, 3590.0)[1] == (10.0, '1:00:00')
    assert time_ticks(4.0, 61.5)[:2] == [(0.0, '1:01.5'), (0.5, '1:02.0')]
    assert time_ticks(10.0)[:2] == [(0.0, '0s'), (1.0, '1s')]   # a whole short file: as before
