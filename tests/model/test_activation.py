"""Model outputs -> probabilities: BirdNET's flat sigmoid, softmax, and outputs that already are."""
import numpy as np
import pytest

from model import activation


def test_sigmoid_is_birdnets_flat_sigmoid():
    x = np.array([[-40.0, -2.0, 0.0, 3.0, 40.0]], dtype=np.float32)
    expected = 1 / (1.0 + np.exp(-1.0 * np.clip(x, -15, 15)))   # birdnetlib Analyzer.flat_sigmoid(x, -1.0)
    got = activation.apply(x, {'kind': 'sigmoid', 'scale': 1.0, 'clip': 15.0})
    assert got.dtype == np.float32 and np.allclose(got, expected, atol=1e-7)
    assert activation.birdnet_sensitivity_scale(1.0) == 1.0
    assert activation.birdnet_sensitivity_scale(1.25) == 0.75 and activation.birdnet_sensitivity_scale(9) == 0.5


def test_softmax_and_probabilities_and_an_unknown_kind():
    x = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    assert activation.apply(x, {'kind': 'softmax'}).sum() == pytest.approx(1.0)
    assert np.array_equal(activation.apply(x, {'kind': 'probabilities'}), x)
    with pytest.raises(ValueError, match='relu'):
        activation.check({'kind': 'relu'})
