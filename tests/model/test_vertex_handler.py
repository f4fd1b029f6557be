"""The Vertex AI endpoint handler's request building and response parsing.

Vertex AI cannot be reached from here, so the endpoint is a fake: an object with
``predict(instances, parameters)`` like ``aiplatform.Endpoint``, answering with the
real exported SavedModel's scores in TF Serving's response shape. Beam's
``VertexAIModelHandlerJSON`` (its request code, retries and throttling) is real;
only its endpoint lookup (a network call) is replaced.
"""
import json
import pickle
import types

import numpy as np
import pytest
import tensorflow as tf
from apache_beam.ml.inference.vertex_ai_inference import VertexAIModelHandlerJSON
from google.api_core.exceptions import InvalidArgument, TooManyRequests

from model.handlers import SavedModelHandler
from model.metadata import INPUT_NAME, OUTPUT_NAME, SIGNATURE
from model.vertex_handler import (EndpointName, VertexEndpointHandler, parse_predictions, to_instances,
                                  windows_per_request)

ENDPOINT = 'projects/my-project/locations/europe-west4/endpoints/1234567890'


class FakeEndpoint:
    """Answers like a deployed TF Serving model; records each request's JSON size."""

    def __init__(self, model_dir: str, failures=()):
        self._serve = tf.saved_model.load(model_dir).signatures[SIGNATURE]
        self._failures = list(failures)
        self.request_bytes, self.request_rows = [], []

    def predict(self, instances, parameters=None):
        self.request_bytes.append(len(json.dumps({'instances': instances})))
        self.request_rows.append(len(instances))
        if self._failures:
            raise self._failures.pop(0)
        scores = self._serve(**{INPUT_NAME: tf.constant(instances, tf.float32)})[OUTPUT_NAME].numpy()
        return types.SimpleNamespace(predictions=scores.tolist(), deployed_model_id='987')


@pytest.fixture
def fake_vertex(monkeypatch, tiny_trained_model):
    model_dir = tiny_trained_model[0]
    endpoints = []

    def retrieve_endpoint(self, endpoint_id, location, is_private):
        assert (endpoint_id, location, is_private) == ('1234567890', 'europe-west4', False)
        return endpoints[-1]

    monkeypatch.setattr(VertexAIModelHandlerJSON, '_retrieve_endpoint', retrieve_endpoint)

    def make(failures=()):
        endpoints.append(FakeEndpoint(model_dir, failures))
        return endpoints[-1]
    return make


def test_endpoint_name_parsing():
    name = EndpointName.parse(ENDPOINT)
    assert (name.project, name.location, name.endpoint_id) == ('my-project', 'europe-west4', '1234567890')
    assert str(name) == ENDPOINT
    with pytest.raises(ValueError, match='not a Vertex AI endpoint'):
        EndpointName.parse('projects/p/endpoints/1')


def test_request_building_and_response_parsing():
    windows = np.array([[0.123456789, -1.0, 0.0]], np.float32)
    assert to_instances(windows) == [[0.12346, -1.0, 0.0]]
    assert windows_per_request(16000) == 8      # 16 kHz one-second windows under the 1.5 MB limit
    assert windows_per_request(10_000_000) == 1
    rows = parse_predictions([[0.2, 0.8], {'probabilities': [1.0, 0.0]}], expected_rows=2, num_labels=2)
    np.testing.assert_array_equal(rows, np.array([[0.2, 0.8], [1.0, 0.0]], np.float32))
    with pytest.raises(ValueError, match='model_uri'):
        parse_predictions([[0.2, 0.8]], expected_rows=1, num_labels=3)


def test_remote_scores_equal_local_scores(fake_vertex, tiny_trained_model):
    model_dir, metadata, _ = tiny_trained_model
    endpoint = fake_vertex()
    # A small request limit forces several requests per batch.
    remote = VertexEndpointHandler(model_dir, endpoint=ENDPOINT, max_request_bytes=150_000)
    # RunInference may hand the client one handler copy loaded to another (a model shared across threads).
    other_copy = pickle.loads(pickle.dumps(remote))
    rng = np.random.default_rng(0)
    files = [rng.uniform(-0.5, 0.5, n).astype(np.float32) for n in (100, 4000, 13000, 9000)]
    results = list(other_copy.run_inference(files, remote.load_model()))

    local = SavedModelHandler(model_dir)
    expected = list(local.run_inference(files, local.load_model()))
    assert [r.model_id for r in results] == ['tiny-v1'] * 4
    for got, want in zip(results, expected):
        assert got.inference.shape == want.inference.shape
        np.testing.assert_allclose(got.inference, want.inference, atol=1e-3)   # inputs rounded to 1e-5
    per_request = windows_per_request(metadata.window_samples, 150_000)
    assert max(endpoint.request_rows) == per_request and sum(endpoint.request_rows) == 1 + 1 + 6 + 4
    assert max(endpoint.request_bytes) < 150_000


def test_throttled_requests_are_retried_and_bad_requests_are_not(fake_vertex, tiny_trained_model):
    model_dir = tiny_trained_model[0]
    files = [np.zeros(4000, np.float32)]
    endpoint = fake_vertex(failures=[TooManyRequests('slow down')])
    handler = VertexEndpointHandler(model_dir, endpoint=ENDPOINT, throttle_delay_secs=0)
    assert next(iter(handler.run_inference(files, handler.load_model()))).inference.shape == (1, 3)
    assert endpoint.request_rows == [1, 1]     # the 429, then the retry

    endpoint = fake_vertex(failures=[InvalidArgument('bad instances')])
    handler = VertexEndpointHandler(model_dir, endpoint=ENDPOINT)
    with pytest.raises(InvalidArgument):
        handler.run_inference(files, handler.load_model())
    assert endpoint.request_rows == [1]
