import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from audio.framing import frames


@pytest.mark.parametrize('n,length,step', [(1000, 400, 160), (400, 400, 160), (401, 400, 1), (399, 400, 160),
                                           (16000, 512, 256)])
def test_frames_are_numpys_sliding_windows_every_step(n, length, step):
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    expected = sliding_window_view(x, length)[::step] if n >= length else np.zeros((0, length), np.float32)
    got = frames(x, length, step)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_a_stack_of_signals_is_framed_row_by_row_and_the_view_is_read_only():
    x = np.arange(3 * 50, dtype=np.float32).reshape(3, 50)
    got = frames(x, 10, 5)
    assert got.shape == (3, 9, 10)
    np.testing.assert_array_equal(got[2, 4], x[2, 20:30])
    assert not got.flags.writeable
    with pytest.raises(ValueError):
        got[0, 0, 0] = 1


def test_frames_of_a_transposed_array_follow_its_strides():
    log_mel = np.arange(20 * 4, dtype=np.float32).reshape(20, 4)   # [frames, bins]
    windows = frames(log_mel.T, 8, 4).transpose(1, 2, 0)            # [windows, frames, bins]
    assert windows.shape == (4, 8, 4)
    np.testing.assert_array_equal(windows[3], log_mel[12:20])
