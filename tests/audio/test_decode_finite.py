"""Non-finite samples are caught wherever they are, also past the first slice the check looks at."""
import io

import numpy as np
import pytest
import soundfile as sf

from audio.decode import DecodeError, _all_finite
from tests.helpers import decode_bytes


@pytest.mark.parametrize('position', [0, (1 << 20) - 1, 1 << 20, 1_400_000])
def test_all_finite_looks_at_every_slice(position):
    samples = np.zeros(1_500_000, np.float32)
    assert _all_finite(samples)
    samples[position] = np.nan
    assert not _all_finite(samples)
    samples[position] = np.inf
    assert not _all_finite(samples)


def test_a_float_wav_with_nan_late_in_the_file_is_corrupt():
    samples = np.zeros(1_200_000, np.float32)
    samples[1_100_000] = np.nan
    buf = io.BytesIO()
    sf.write(buf, samples, 16000, format='WAV', subtype='FLOAT')
    with pytest.raises(DecodeError) as error:
        decode_bytes(buf.getvalue(), 16000, 600)
    assert error.value.error_type == 'Corrupt'
