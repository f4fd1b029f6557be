"""The pipeline on the Vertex AI path, end to end, against the local Vertex AI endpoint (``stack/vertex_endpoint.py``):
``python -m pipeline.main ... --model_endpoint E --vertex_api_endpoint http://127.0.0.1:PORT``, real requests over
HTTP through google-cloud-aiplatform and Beam's ``VertexAIModelHandlerJSON``, faults injected by the endpoint.

Fast without faking: the handler's retries run on the pipeline's own budget (``--transient_retry_seconds``,
backoff from 1 s with full jitter) instead of Beam's fixed 5-s first wait, so a 429 burst and a 1.5-s outage
cost seconds, and an outage "longer than the budget" only has to outlast a 1-s budget.
"""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

from audio import encode
from model.metadata import load_metadata, save_metadata
from pipeline.main import run
from results import sqlite_store
from stack.vertex_endpoint import get, post
from tests.conftest import LOCAL_VERTEX_ENDPOINT
from tests.helpers import write_clip

pytestmark = pytest.mark.e2e
CONFIDENCE_TOLERANCE = 1e-4


def run_batch(folder, db, model_dir, *extra, vertex=None) -> int:
    remote = ['--model_endpoint', LOCAL_VERTEX_ENDPOINT, '--vertex_api_endpoint', vertex.url] if vertex else []
    return run(['--input_pattern', f'{folder}/**', '--output_table', str(db),
                '--spectrogram_location', str(db) + '.spectrograms', '--model_uri', model_dir,
                '--direct_num_workers', '1', *remote, *extra])


def clips(folder, count: int) -> list[str]:
    """Loud and quiet sounds; the quiet 8 kHz hum is the one whose scores move most with the samples' rounding."""
    labels = ('hum', 'chirp', 'tone', 'noise_burst', 'clicks')
    return [write_clip(folder, f'c{i}.wav', seconds=0.8 + 0.7 * i, label=labels[i % 5], seed=i,
                       rate=8000 if i % 5 == 0 else 16000) for i in range(count)]


def rows(db) -> tuple[dict, dict]:
    """(results, errors) by file; fails on any file with two rows of a kind."""
    results = sqlite_store.read_table(str(db), 'processed')
    errors = sqlite_store.read_table(str(db), 'errors')
    by_file = {r['audio_file']: r for r in results}
    assert len(by_file) == len(results), 'a file has two result rows'
    return by_file, {e['audio_file']: e for e in errors}


def test_rows_through_vertex_equal_rows_from_in_worker_inference(local_vertex, tiny_model_dir, tmp_path):
    folder = tmp_path / 'in'
    paths = clips(folder, 4)
    assert run_batch(folder, tmp_path / 'local.db', tiny_model_dir) == 0
    # Two worker processes: each configures its own SDK client from the option.
    assert run_batch(folder, tmp_path / 'vertex.db', tiny_model_dir, '--direct_running_mode', 'multi_processing',
                     '--direct_num_workers', '2', vertex=local_vertex) == 0
    local, local_errors = rows(tmp_path / 'local.db')
    remote, remote_errors = rows(tmp_path / 'vertex.db')
    assert set(remote) == set(local) == set(paths) and not local_errors and not remote_errors
    for path in paths:
        assert remote[path]['label'] == local[path]['label'], path
        assert abs(remote[path]['confidence'] - local[path]['confidence']) <= CONFIDENCE_TOLERANCE, path
        for got, want in zip(remote[path]['scores'], local[path]['scores']):
            assert got['label'] == want['label'] and abs(got['score'] - want['score']) <= CONFIDENCE_TOLERANCE
    assert get(local_vertex.url, '/local/stats')['instances'] > 0, 'the endpoint did the scoring'


def test_a_429_burst_and_a_short_outage_lose_and_duplicate_nothing(local_vertex, tiny_model_dir, tmp_path):
    folder = tmp_path / 'in'
    paths = clips(folder, 3)
    post(local_vertex.url, '/local/faults', {'throttle': 3, 'unavailable_seconds': 1.5})
    assert run_batch(folder, tmp_path / 'r.db', tiny_model_dir, '--transient_retry_seconds', '60',
                     vertex=local_vertex) == 0
    results, errors = rows(tmp_path / 'r.db')
    assert set(results) == set(paths) and not errors
    answers = get(local_vertex.url, '/local/stats')['answers']
    assert answers['429'] == 3 and answers['503'] >= 1, answers


def test_an_outage_longer_than_the_retry_budget_gives_retryable_rows_that_a_replay_repairs(
        local_vertex, tiny_model_dir, tmp_path):
    folder, db = tmp_path / 'in', tmp_path / 'r.db'
    paths = clips(folder, 3)
    post(local_vertex.url, '/local/faults', {'unavailable_seconds': 3600})
    assert run_batch(folder, db, tiny_model_dir, '--transient_retry_seconds', '1', vertex=local_vertex) == 0
    results, errors = rows(db)
    assert not results and set(errors) == set(paths)
    for error in errors.values():
        assert error['stage'] == 'inference' and error['retryable'] and error['error_type'] == 'ServiceUnavailable'

    local_vertex.vertex.reset()   # the endpoint is back
    assert run_batch(folder, db, tiny_model_dir, '--transient_retry_seconds', '1', vertex=local_vertex) == 0
    results, _ = rows(db)
    assert set(results) == set(paths), 'the replay retried every retryable file'


def test_refused_requests_give_an_error_row_to_the_files_at_fault_only(local_vertex, tiny_model_dir, tmp_path):
    folder = tmp_path / 'in'
    folder.mkdir()
    silent = [encode.write(str(folder / f'quiet{i}.wav'), np.zeros(12000, np.float32), 16000, 'wav')
              for i in range(2)]
    noisy = write_clip(folder, 'noisy.wav', seconds=0.9, label='noise_burst', seed=7)
    poisoned_samples = np.zeros(12000, np.float32)
    poisoned_samples[0] = 0.5   # exactly representable in 16-bit PCM: the instance's first sample is 0.5
    poisoned = encode.write(str(folder / 'poisoned.wav'), poisoned_samples, 16000, 'wav')
    # A silent window is ~176 kB of the client's JSON, a noisy one ~265 kB: over 200 kB only the noisy one is
    # refused alone. The poisoned window always gets an answer one prediction short; one more answer is short once.
    post(local_vertex.url, '/local/faults', {'max_request_bytes': 200_000, 'poison': 0.5, 'wrong_count': 1})
    assert run_batch(folder, tmp_path / 'r.db', tiny_model_dir, vertex=local_vertex) == 0
    results, errors = rows(tmp_path / 'r.db')
    assert set(results) == set(silent) and set(errors) == {noisy, poisoned}
    for path in (noisy, poisoned):
        assert errors[path]['error_type'] == 'RefusedByModel' and not errors[path]['retryable']
    assert 'exceeds the limit: 200000 bytes' in errors[noisy]['message']
    assert 'MalformedAnswer' in errors[poisoned]['message']


def test_launch_fails_clearly_when_a_window_cannot_fit_one_request(tmp_path, tiny_model_dir, capsys):
    big = tmp_path / 'model48k'
    shutil.copytree(tiny_model_dir, big)
    metadata = load_metadata(str(big))
    save_metadata(dataclasses.replace(metadata, sample_rate_hz=48000, window_samples=144000, hop_samples=72000),
                  str(big))
    write_clip(tmp_path / 'in', 'a.wav', seconds=1.0)
    unreachable = type('Unreachable', (), {'url': 'http://127.0.0.1:9'})   # never called: refused before
    assert run_batch(tmp_path / 'in', tmp_path / 'r.db', str(big), vertex=unreachable) == 2
    error = capsys.readouterr().err
    assert 'request size limit of 1,572,864 bytes' in error and '144,000 samples' in error


def test_streaming_on_the_stacks_own_vertex_endpoint(local_stack, model_on_local_stack):
    """``python -m stack start``'s endpoint, a model deployed to it with ``model.vertex_deploy``, and the streaming
    pipeline (its own process) pointed at it: every upload scored there, through a 429 burst, once."""
    from model import vertex_deploy
    from stack import streaming
    from stack.uploads import Uploader
    from tests.e2e.corpus import Expected, settle, stack_rows, wait_accounted, wav

    stack = local_stack
    url = f'http://127.0.0.1:{stack.services["vertex"].port}'
    name = vertex_deploy.main(['deploy', '--model', model_on_local_stack, '--project', stack.config.project,
                               '--region', 'us-central1', '--endpoint-name', 'tiny', '--api-endpoint', url])
    post(url, '/local/faults', {'throttle': 2})
    streaming.start_pipeline(stack, model_on_local_stack, ['--max_batch_duration_secs', '1', '--model_endpoint',
                                                            name, '--vertex_api_endpoint', url])
    uploader, expected = Uploader(stack.config.topic_path), Expected()
    for i in range(3):
        item = uploader.put(stack.config.upload_bucket, f'vertex/{i}.wav', wav(i))
        expected.result(item.uri, item.generation)
    wait_accounted(stack, expected.outcomes, 'rows scored on the local Vertex AI endpoint')
    settle(lambda: stack_rows(stack).totals, quiet_polls=2)   # late duplicates would show up here
    rows = stack_rows(stack)
    assert rows.result_keys == {key: 1 for key in expected.outcomes} and not rows.errors
    stats = get(url, '/local/stats')
    assert stats['answers'].get('429') == 2 and stats['instances'] >= 3
    assert streaming.stop_pipeline(stack)
