"""Deployment to Vertex AI: the requests it builds and the responses it reads.

Vertex AI cannot be reached from here: ``deploy`` runs against a fake of the few
``google.cloud.aiplatform`` calls it makes (recording them), and ``--dry-run``
needs no network at all.
"""
import json
import types

import pytest

from model import vertex_deploy
from model.metadata import ModelMetadata, save_metadata

METADATA = ModelMetadata(model_version='fsdd-20260101_1200', labels=('0', '1'))


@pytest.fixture
def model_dir(tmp_path):
    folder = tmp_path / 'model'
    (folder / 'variables').mkdir(parents=True)
    (folder / 'saved_model.pb').write_bytes(b'pb')
    (folder / 'variables' / 'variables.index').write_bytes(b'idx')
    save_metadata(METADATA, str(folder))
    return str(folder)


def test_dry_run_prints_the_requests(model_dir, capsys):
    vertex_deploy.main(['deploy', '--model', model_dir, '--project', 'proj', '--region', 'europe-west4',
                 '--staging', 'gs://bucket/models/', '--accelerator', 'nvidia_tesla_t4:2', '--dry-run'])
    calls = json.loads(capsys.readouterr().out)
    assert [c.get('method', 'copy') for c in calls] == ['copy', 'GET', 'POST', 'GET', 'POST', 'POST']
    assert calls[0] == {'step': 'copy the model directory', 'from': model_dir,
                        'to': 'gs://bucket/models/fsdd-20260101_1200'}
    upload = calls[2]
    assert upload['url'] == ('https://europe-west4-aiplatform.googleapis.com/v1/projects/proj/locations/europe-west4/'
                             'models:upload')
    model = upload['body']['model']
    assert model['artifactUri'] == 'gs://bucket/models/fsdd-20260101_1200'
    assert model['containerSpec']['imageUri'] == 'europe-docker.pkg.dev/vertex-ai/prediction/tf2-gpu.2-15:latest'
    assert model['labels']['model_version'] == 'fsdd-20260101_1200'
    assert model['versionAliases'] == ['v-fsdd-20260101-1200']
    deploy = calls[5]['body']['deployedModel']
    assert deploy['dedicatedResources']['machineSpec'] == {
        'machineType': 'n1-standard-4', 'acceleratorType': 'NVIDIA_TESLA_T4', 'acceleratorCount': 2}
    assert calls[5]['body']['trafficSplit'] == {'0': 100}


def test_gcs_model_needs_no_copy_and_local_model_needs_staging(model_dir):
    request = vertex_deploy.DeployRequest(model_dir='gs://b/m/v1/', project='p', region='us-central1',
                                          metadata=METADATA)
    calls = vertex_deploy.build_requests(request)
    assert calls[0]['method'] == 'GET' and calls[1]['body']['model']['artifactUri'] == 'gs://b/m/v1'
    assert calls[1]['body']['model']['containerSpec']['imageUri'] == (
        'us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest')
    with pytest.raises(ValueError, match='--staging'):
        vertex_deploy.build_requests(vertex_deploy.DeployRequest(model_dir=model_dir, project='p', region='r',
                                                                 metadata=METADATA))


def test_response_parsing():
    assert vertex_deploy.endpoint_id('projects/p/locations/europe-west4/endpoints/4567') == '4567'
    with pytest.raises(ValueError):
        vertex_deploy.endpoint_id('projects/p/locations/europe-west4/models/4567')
    old, new, other = (types.SimpleNamespace(display_name=n, create_time=t)
                       for n, t in (('audio', 1), ('audio', 2), ('else', 3)))
    assert vertex_deploy.choose_endpoint([old, other, new], 'audio') is new
    assert vertex_deploy.choose_endpoint([other], 'audio') is None
    assert vertex_deploy.parse_accelerator('NVIDIA_L4') == ('NVIDIA_L4', 1)
    assert vertex_deploy.parse_accelerator(None) == (None, 0)


class FakeAiplatform:
    """The aiplatform calls ``deploy`` makes, recorded; endpoints listed from ``existing``."""

    def __init__(self, existing=()):
        calls = self.calls = []
        existing = list(existing)

        class Model:
            resource_name = 'projects/p/locations/r/models/77'

            @staticmethod
            def list(filter):
                calls.append(('Model.list', filter))
                return []

            @classmethod
            def upload(cls, **kwargs):
                calls.append(('Model.upload', kwargs))
                return cls()

            def deploy(self, **kwargs):
                calls.append(('Model.deploy', kwargs))

        class Endpoint:
            def __init__(self, name, display_name='audio-classifier', create_time=0):
                self.resource_name, self.display_name, self.create_time = name, display_name, create_time

            @staticmethod
            def list(filter):
                calls.append(('Endpoint.list', filter))
                return existing

            @classmethod
            def create(cls, **kwargs):
                calls.append(('Endpoint.create', kwargs))
                return cls('projects/p/locations/r/endpoints/new-1')

        self.Model, self.Endpoint = Model, Endpoint

    def init(self, **kwargs):
        self.calls.append(('init', kwargs))


def test_deploy_copies_a_local_model_to_staging_and_prints_the_endpoint(model_dir, tmp_path, capsys):
    # A local folder stands in for the gs:// staging prefix (the copy goes through Beam's FileSystems).
    staging = tmp_path / 'staging'
    sdk = FakeAiplatform()
    vertex_deploy.main(['deploy', '--model', model_dir, '--project', 'p', '--region', 'r', '--staging', str(staging),
                 '--container-uri', 'img:1'], sdk=sdk)
    assert capsys.readouterr().out.strip() == 'projects/p/locations/r/endpoints/new-1'
    copied = staging / METADATA.model_version
    assert (copied / 'saved_model.pb').read_bytes() == b'pb'
    assert (copied / 'variables' / 'variables.index').read_bytes() == b'idx'
    assert dict(sdk.calls)['Model.upload']['artifact_uri'] == str(copied)


def test_deploy_creates_an_endpoint_when_none_exists():
    sdk = FakeAiplatform()
    request = vertex_deploy.DeployRequest(model_dir='gs://b/m/v1', project='p', region='r', metadata=METADATA,
                                   container_uri='img:1', machine_type='n1-highcpu-8', max_replicas=3)
    name = vertex_deploy.deploy(request, sdk)
    assert name == 'projects/p/locations/r/endpoints/new-1'
    steps = [c[0] for c in sdk.calls]
    assert steps == ['init', 'Model.list', 'Model.upload', 'Endpoint.list', 'Endpoint.create', 'Model.deploy']
    upload = dict(sdk.calls)['Model.upload']
    assert (upload['artifact_uri'], upload['serving_container_image_uri'], upload['parent_model']) == (
        'gs://b/m/v1', 'img:1', None)
    deployed = dict(sdk.calls)['Model.deploy']
    assert deployed['endpoint'].resource_name == name
    assert (deployed['machine_type'], deployed['max_replica_count'], deployed['traffic_percentage']) == (
        'n1-highcpu-8', 3, 100)


def test_deploy_reuses_the_newest_endpoint_of_that_name():
    sdk = FakeAiplatform()
    older = sdk.Endpoint('projects/p/locations/r/endpoints/1', create_time=1)
    newer = sdk.Endpoint('projects/p/locations/r/endpoints/2', create_time=2)
    sdk = FakeAiplatform(existing=[older, newer])
    request = vertex_deploy.DeployRequest(model_dir='gs://b/m/v1', project='p', region='r', metadata=METADATA,
                                   container_uri='img:1')
    assert vertex_deploy.deploy(request, sdk) == 'projects/p/locations/r/endpoints/2'
    assert 'Endpoint.create' not in [c[0] for c in sdk.calls]


def test_deploy_to_the_local_endpoint_serves_the_directory_as_it_is(local_vertex, tiny_model_dir, capsys):
    from model.metadata import load_metadata
    from stack.vertex_endpoint import get

    name = vertex_deploy.main(['deploy', '--model', tiny_model_dir, '--project', 'local-project', '--region',
                               'us-central1', '--endpoint-name', 'deployed-here', '--api-endpoint', local_vertex.url])
    assert name.startswith('projects/local-project/locations/us-central1/endpoints/')
    assert f'--model_endpoint {name}' in capsys.readouterr().err
    endpoint = get(local_vertex.url, f'/v1/{name}')
    assert endpoint['displayName'] == 'deployed-here'
    assert endpoint['labels']['model_version'] == load_metadata(tiny_model_dir).model_version
    assert len(endpoint['deployedModels']) == 1
