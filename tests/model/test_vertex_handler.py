"""The Vertex AI endpoint handler against the local endpoint (``stack/vertex_endpoint.py``): a real HTTP server
speaking Vertex's REST surface, reached through google-cloud-aiplatform and Beam's ``VertexAIModelHandlerJSON``.
Nothing here is faked; faults are the endpoint's own (429, 503, 400 over a size, malformed answers)."""
import pickle

import numpy as np
import pytest

from model.handlers import SavedModelHandler
from model.metadata import load_metadata
from model.vertex_handler import (MAX_REQUEST_BYTES, ApiEndpoint, EndpointName, MalformedAnswer,
                                  VertexEndpointHandler, WrongModel, parse_predictions, to_instances,
                                  windows_per_request)
from stack.vertex_endpoint import get, post
from tests.conftest import LOCAL_VERTEX_ENDPOINT


def handler(server, model_dir, **kwargs) -> VertexEndpointHandler:
    kwargs.setdefault('initial_backoff_seconds', 0.05)
    return VertexEndpointHandler(model_dir, endpoint=LOCAL_VERTEX_ENDPOINT, api_endpoint=server.url, **kwargs)


def files(*lengths: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-0.5, 0.5, n).astype(np.float32) for n in lengths]


def local_scores(model_dir, batch) -> list:
    local = SavedModelHandler(model_dir)
    return [r.inference for r in local.run_inference(batch, local.load_model())]


def test_endpoint_name_and_api_endpoint_parsing():
    name = EndpointName.parse('projects/my-project/locations/europe-west4/endpoints/1234567890')
    assert (name.project, name.location, name.endpoint_id) == ('my-project', 'europe-west4', '1234567890')
    with pytest.raises(ValueError, match='not a Vertex AI endpoint'):
        EndpointName.parse('projects/p/endpoints/1')
    assert ApiEndpoint.parse(None) == ApiEndpoint(None, 'grpc')
    assert ApiEndpoint.parse('http://127.0.0.1:9080') == ApiEndpoint('http://127.0.0.1:9080', 'rest', True)
    assert ApiEndpoint.parse('http://localhost:9080/').anonymous
    assert ApiEndpoint.parse('https://vertex.example.com') == ApiEndpoint('https://vertex.example.com', 'rest')
    assert ApiEndpoint.parse('europe-west4-aiplatform.googleapis.com') == ApiEndpoint(
        'europe-west4-aiplatform.googleapis.com', 'grpc')
    with pytest.raises(ValueError, match='loopback|local endpoint only'):
        ApiEndpoint.parse('http://10.0.0.7:8080')
    with pytest.raises(ValueError, match='not a Vertex AI API endpoint'):
        ApiEndpoint.parse('https://host/v1/predict')


def test_request_building_and_response_parsing():
    assert to_instances(np.array([[0.123456789, -1.0, 0.0]], np.float32)) == [[0.123457, -1.0, 0.0]]
    assert windows_per_request(16000, transport='grpc') == 8   # 16 kHz one-second windows under 1.5 MiB
    assert windows_per_request(16000, transport='rest') == 5
    rows = parse_predictions([[0.2, 0.8], {'probabilities': [1.0, 0.0]}], expected_rows=2, num_labels=2)
    np.testing.assert_array_equal(rows, np.array([[0.2, 0.8], [1.0, 0.0]], np.float32))
    with pytest.raises(WrongModel, match='model_uri'):
        parse_predictions([[0.2, 0.8]], expected_rows=1, num_labels=3)
    with pytest.raises(MalformedAnswer, match='1 predictions for 2'):
        parse_predictions([[0.2, 0.8]], expected_rows=2, num_labels=2)


def test_a_window_too_large_for_one_request_is_refused_up_front_naming_the_limit(tiny_model_dir):
    # A 3-s window at 48 kHz: 144,000 samples, ~1.58 MB over gRPC, ~2.4 MB as the REST client's JSON.
    with pytest.raises(ValueError, match='1,572,864 bytes'):
        windows_per_request(144_000, transport='grpc')
    with pytest.raises(ValueError, match='request size limit'):
        VertexEndpointHandler(tiny_model_dir, endpoint=LOCAL_VERTEX_ENDPOINT, api_endpoint='http://127.0.0.1:1',
                              max_request_bytes=200_000)


def test_remote_scores_equal_local_scores_one_window_per_request_if_need_be(local_vertex, tiny_model_dir):
    metadata = load_metadata(tiny_model_dir)
    # A limit that holds one window and not two: every request carries a single window.
    limit = 16000 * 17 + 8192
    post(local_vertex.url, '/local/faults', {'max_request_bytes': limit})
    remote = handler(local_vertex, tiny_model_dir, max_request_bytes=limit)
    assert remote.windows_per_request == 1
    # RunInference may hand the client one handler copy loaded to another (a model shared across threads).
    other_copy = pickle.loads(pickle.dumps(remote))
    batch = files(100, 4000, 13000, 9000)
    results = other_copy.run_inference(batch, remote.load_model())
    assert [r.model_id for r in results] == [metadata.model_version] * 4 and all(r.error is None for r in results)
    for got, want in zip(results, local_scores(tiny_model_dir, batch)):
        assert got.inference.shape == want.shape
        np.testing.assert_allclose(got.inference, want, atol=1e-4)   # inputs rounded to 1e-6
    stats = get(local_vertex.url, '/local/stats')
    windows = sum(metadata.window_count(len(samples)) for samples in batch)
    assert len(stats['predict_bytes']) == windows and max(stats['predict_bytes']) < limit
    assert set(stats['answers']) == {'200'}


def test_throttling_and_unavailability_are_retried_within_the_budget(local_vertex, tiny_model_dir):
    post(local_vertex.url, '/local/faults', {'throttle': 3})
    remote = handler(local_vertex, tiny_model_dir)
    [result] = remote.run_inference(files(4000), remote.load_model())
    assert result.inference.shape == (1, len(remote.metadata.labels)) and result.error is None
    stats = get(local_vertex.url, '/local/stats')
    assert stats['answers']['429'] == 3 and len(stats['predict_bytes']) == 4, 'three refused, then answered'


def test_an_outage_longer_than_the_budget_fails_the_batch(local_vertex, tiny_model_dir):
    from google.api_core.exceptions import ServiceUnavailable

    remote = handler(local_vertex, tiny_model_dir, retry_seconds=0.3)
    model = remote.load_model()
    post(local_vertex.url, '/local/faults', {'unavailable_seconds': 3600})
    with pytest.raises(ServiceUnavailable):
        remote.run_inference(files(4000, 4000), model)
    # (How many tries fit in the budget depends on the machine: a try may itself outlast 0.3 s.)
    assert get(local_vertex.url, '/local/stats')['answers']['503'] >= 1


def test_a_refused_request_is_narrowed_to_the_file_at_fault(local_vertex, tiny_model_dir):
    batch = files(16000, 16000, 16000, 16000, 16000, seed=1)
    batch[3] = batch[3].copy()
    batch[3][0] = 0.5   # the endpoint answers one prediction short for any request holding this window
    post(local_vertex.url, '/local/faults', {'poison': 0.5, 'wrong_count': 1})   # and one one-off bad answer
    remote = handler(local_vertex, tiny_model_dir)
    results = remote.run_inference(batch, remote.load_model())
    assert [r.error is not None for r in results] == [False, False, False, True, False]
    assert 'MalformedAnswer' in results[3].error and LOCAL_VERTEX_ENDPOINT in results[3].error
    expected = local_scores(tiny_model_dir, batch)
    for i in (0, 1, 2, 4):
        np.testing.assert_allclose(results[i].inference, expected[i], atol=1e-4)


def test_a_request_over_the_endpoints_size_limit_is_split_and_only_a_window_too_big_alone_is_refused(
        local_vertex, tiny_model_dir):
    # Silence costs ~11 bytes a sample as JSON ('0.0'), noise ~17: under this limit a silent window fits alone,
    # a noisy one does not, and two of anything do not.
    post(local_vertex.url, '/local/faults', {'max_request_bytes': 200_000})
    batch = [np.zeros(16000, np.float32), files(16000)[0], np.zeros(16000, np.float32)]
    remote = handler(local_vertex, tiny_model_dir)
    results = remote.run_inference(batch, remote.load_model())
    assert [r.error is not None for r in results] == [False, True, False]
    assert 'Request payload size exceeds the limit: 200000 bytes' in results[1].error


def test_predictions_of_another_model_fail_the_batch_not_the_files(local_vertex, tiny_model_dir):
    other = load_metadata(tiny_model_dir)
    import dataclasses

    wrong = dataclasses.replace(other, labels=other.labels + ('extra',))
    remote = handler(local_vertex, tiny_model_dir, metadata=wrong)
    with pytest.raises(WrongModel):
        remote.run_inference(files(4000, 4000), remote.load_model())


def test_max_request_bytes_default_is_vertex_public_limit():
    assert MAX_REQUEST_BYTES == 1_572_864
