"""Fixtures for the model tests: a tiny model trained on generated audio in seconds."""
from __future__ import annotations

import pytest

from tests.model.tiny import TINY_CONFIG, TINY_LABELS, synthetic_audio


@pytest.fixture(scope='session')
def tiny_trained_model(tmp_path_factory):
    """(model dir, final metadata, test audio): trained on one random stream, evaluated on another."""
    from model.train import train_and_export

    out = str(tmp_path_factory.mktemp('trained') / 'tiny')
    train = synthetic_audio(TINY_LABELS, 12, seed=1, rate=TINY_CONFIG.sample_rate_hz)
    test = synthetic_audio(TINY_LABELS, 6, seed=2, rate=TINY_CONFIG.sample_rate_hz)
    metadata = train_and_export(train, test, TINY_LABELS, TINY_CONFIG, out, 'tiny-v1', {'data': 'synthetic'},
                                verbose=0)
    return out, metadata, test
