"""Models read through Beam's FileSystems: a model directory on the storage emulator (a real process) is
copied to local disk once per process and serves exactly as the local directory does."""
import os

import numpy as np
import pytest

from model import local_copy
from model.handlers import SavedModelHandler
from model.metadata import load_metadata


def test_a_local_model_directory_is_loaded_in_place(tiny_trained_model):
    model_dir, _, _ = tiny_trained_model
    assert local_copy.local_model_dir(model_dir) == model_dir


def test_a_gs_model_is_copied_once_per_process_and_scores_like_the_local_one(tiny_trained_model, cloud_storage):
    model_dir, metadata, test_audio = tiny_trained_model
    uri = cloud_storage.upload_dir(model_dir, 'gs://models/copy-test/tiny-v1')

    local = local_copy.local_model_dir(uri + '/')
    assert local != model_dir and local_copy.local_model_dir(uri) == local   # one copy per process
    copied = sorted(os.path.relpath(os.path.join(r, f), local) for r, _, fs in os.walk(local) for f in fs)
    original = sorted(os.path.relpath(os.path.join(r, f), model_dir) for r, _, fs in os.walk(model_dir) for f in fs)
    assert copied == original and 'saved_model.pb' in copied

    remote, in_place = SavedModelHandler(uri), SavedModelHandler(model_dir)
    assert remote.metadata == load_metadata(model_dir) == metadata
    files = [clip.samples for clip in test_audio[:3]]
    remote_results = remote.run_inference(files, remote.load_model())
    for a, b in zip(remote_results, in_place.run_inference(files, in_place.load_model())):
        np.testing.assert_array_equal(a.inference, b.inference)


def test_a_missing_model_directory_says_so(cloud_storage):
    cloud_storage.bucket('models')
    with pytest.raises(FileNotFoundError, match='no-such-model'):
        local_copy.local_model_dir('gs://models/no-such-model')
