"""The local Vertex AI endpoint, through google-cloud-aiplatform's own client (REST transport): what it answers,
and each fault it injects, as the client sees it."""
import numpy as np
import pytest
import tensorflow as tf
from google.api_core import exceptions

from model.metadata import INPUT_NAME, OUTPUT_NAME, SIGNATURE
from model.vertex_handler import ApiEndpoint
from stack.vertex_endpoint import MAX_REQUEST_BYTES, get, main, post, serve_command
from tests.conftest import LOCAL_VERTEX_ENDPOINT


@pytest.fixture
def endpoint(local_vertex):
    from google.cloud import aiplatform

    ApiEndpoint.parse(local_vertex.url).configure_sdk('local-project', 'us-central1')
    return aiplatform.Endpoint(LOCAL_VERTEX_ENDPOINT)


def instances(n: int, seed: int = 0) -> list:
    return np.round(np.random.default_rng(seed).uniform(-1, 1, (n, 16000)), 5).tolist()


def test_describes_the_endpoint_and_predicts_in_order_with_the_savedmodel(endpoint, tiny_model_dir):
    [deployed] = endpoint.list_models()
    assert endpoint.resource_name == LOCAL_VERTEX_ENDPOINT and deployed.id
    rows = instances(3)
    prediction = endpoint.predict(instances=rows)
    assert prediction.deployed_model_id == deployed.id
    serve = tf.saved_model.load(tiny_model_dir).signatures[SIGNATURE]
    expected = serve(**{INPUT_NAME: tf.constant(rows, tf.float32)})[OUTPUT_NAME].numpy()
    np.testing.assert_allclose(np.array(prediction.predictions), expected, atol=1e-6)


def test_unknown_endpoint_is_404(local_vertex):
    from google.cloud import aiplatform

    ApiEndpoint.parse(local_vertex.url).configure_sdk('local-project', 'us-central1')
    with pytest.raises(exceptions.NotFound):
        aiplatform.Endpoint('projects/local-project/locations/us-central1/endpoints/42').list_models()


def test_faults_as_the_client_sees_them(endpoint, local_vertex):
    post(local_vertex.url, '/local/faults', {'throttle': 2})
    for _ in range(2):
        with pytest.raises(exceptions.TooManyRequests):
            endpoint.predict(instances=instances(1))
    assert len(endpoint.predict(instances=instances(1)).predictions) == 1

    post(local_vertex.url, '/local/faults', {'unavailable_seconds': 3600})
    with pytest.raises(exceptions.ServiceUnavailable):
        endpoint.predict(instances=instances(1))
    post(local_vertex.url, '/local/faults', {'unavailable_seconds': 0})

    post(local_vertex.url, '/local/faults', {'wrong_count': 1})
    assert len(endpoint.predict(instances=instances(2)).predictions) == 1
    assert len(endpoint.predict(instances=instances(2)).predictions) == 2

    post(local_vertex.url, '/local/faults', {'poison': 0.5})
    rows = instances(2)
    rows[1][0] = 0.5
    assert len(endpoint.predict(instances=rows).predictions) == 1
    assert len(endpoint.predict(instances=rows[:1]).predictions) == 1
    stats = get(local_vertex.url, '/local/stats')
    assert (stats['answers']['429'], stats['answers']['503'], len(stats['predict_bytes'])) == (2, 1, 8)


def test_requests_over_the_size_limit_are_refused(endpoint, local_vertex):
    # The client's JSON is ~16 bytes a sample: 7 one-second windows pass 1.5 MiB.
    with pytest.raises(exceptions.BadRequest, match=f'{MAX_REQUEST_BYTES}'):
        endpoint.predict(instances=instances(7))
    assert len(endpoint.predict(instances=instances(5)).predictions) == 5
    sizes = get(local_vertex.url, '/local/stats')['predict_bytes']
    assert sizes[0] > MAX_REQUEST_BYTES > sizes[1]


def test_fault_command_line_and_deploy_route(local_vertex, tiny_model_dir, capsys):
    assert main(['fault', '--url', local_vertex.url, '--throttle', '3', '--latency-seconds', '0.01']) == 0
    assert get(local_vertex.url, '/local/stats')['faults']['throttle'] == 3
    assert main(['fault', '--url', local_vertex.url, '--reset']) == 0
    assert get(local_vertex.url, '/local/stats')['faults']['throttle'] == 0
    answer = post(local_vertex.url, '/local/deploy', {'project': 'p', 'location': 'europe-west4',
                                                      'display_name': 'other', 'artifact_uri': tiny_model_dir})
    assert answer['name'].startswith('projects/p/locations/europe-west4/endpoints/')
    assert answer['displayName'] == 'other' and not answer['name'].endswith('/1'), 'a new endpoint'
    again = post(local_vertex.url, '/local/deploy', {'project': 'p', 'location': 'europe-west4',
                                                     'display_name': 'other', 'artifact_uri': tiny_model_dir})
    assert again['name'] == answer['name'], 'deploying to the same display name reuses its endpoint'
    assert serve_command('127.0.0.1', 9)[:5] == [serve_command('127.0.0.1', 9)[0], '-m', 'stack.vertex_endpoint',
                                                  'serve', '--host']
