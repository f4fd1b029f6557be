"""Deploy an exported model directory to a Vertex AI endpoint.

    python -m model.vertex_deploy deploy --model DIR --project P --region R [--staging gs://B/models]
        [--endpoint-name NAME] [--machine-type n1-standard-4] [--accelerator TYPE:COUNT] [--dry-run]
        [--api-endpoint http://127.0.0.1:PORT]

Steps: copy a local model directory to Cloud Storage (``--staging``), upload it
to the Model Registry with Vertex AI's prebuilt TensorFlow serving container
(as a new version of a model of the same display name, if one exists), create
or reuse the endpoint named ``--endpoint-name``, deploy the model there with
all traffic, and print the endpoint's resource name: the pipeline's
``--model_endpoint``. ``--dry-run`` prints the REST requests instead of making
them. The SavedModel's ``serving_default`` signature takes ``{"instances":
[[samples...], ...]}``, which is what ``model.vertex_handler`` sends.

``--api-endpoint http://127.0.0.1:PORT`` deploys to the local endpoint of
``python -m stack start`` (``stack/vertex_endpoint.py``) instead: it serves the
directory as it is (local or ``gs://``: nothing is copied, no registry, no
machines) on the endpoint named ``--endpoint-name``, and prints its resource
name, the same output as against Google Cloud. Another ``--api-endpoint``
(``https://HOST`` or ``HOST``) points the SDK elsewhere for the real steps.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from model.metadata import ModelMetadata, load_metadata

API = 'https://{region}-aiplatform.googleapis.com/v1'
# The newest TensorFlow the prebuilt prediction containers offer; a SavedModel of plain TF ops
# (this one's front end is STFT + matmul) loads in an older TF Serving.
DEFAULT_TF_VERSION = '2.15'
DEFAULT_MACHINE_TYPE = 'n1-standard-4'
DISPLAY_NAME_UNSAFE = re.compile(r'[^a-z0-9_-]')


@dataclass(frozen=True)
class DeployRequest:
    """What to deploy where: everything the requests are built from."""
    model_dir: str
    project: str
    region: str
    metadata: ModelMetadata
    staging: Optional[str] = None
    model_name: str = 'audio-classifier'
    endpoint_name: str = 'audio-classifier'
    machine_type: str = DEFAULT_MACHINE_TYPE
    accelerator_type: Optional[str] = None
    accelerator_count: int = 0
    min_replicas: int = 1
    max_replicas: int = 1
    tf_version: str = DEFAULT_TF_VERSION
    container_uri: Optional[str] = None

    @property
    def parent(self) -> str:
        return f'projects/{self.project}/locations/{self.region}'

    @property
    def artifact_uri(self) -> str:
        if self.model_dir.startswith('gs://'):
            return self.model_dir.rstrip('/')
        if not self.staging:
            raise ValueError('a local --model needs --staging gs://BUCKET/PREFIX to copy it to')
        return f'{self.staging.rstrip("/")}/{self.metadata.model_version}'

    @property
    def serving_container(self) -> str:
        if self.container_uri:
            return self.container_uri
        from google.cloud.aiplatform import helpers

        return helpers.get_prebuilt_prediction_container_uri(
            framework='tensorflow', framework_version=self.tf_version, region=self.region,
            accelerator='gpu' if self.accelerator_type else 'cpu')

    def labels(self) -> dict[str, str]:
        """Resource labels (lower-case, <= 63 chars): the model version the pipeline's rows carry."""
        return {'model_version': label_value(self.metadata.model_version), 'source': 'audio-pipeline'}

    def machine_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {'machineType': self.machine_type}
        if self.accelerator_type:
            spec.update(acceleratorType=self.accelerator_type, acceleratorCount=self.accelerator_count)
        return spec


def label_value(text: str) -> str:
    return DISPLAY_NAME_UNSAFE.sub('-', text.lower())[:63]


def parse_accelerator(text: Optional[str]) -> tuple[Optional[str], int]:
    """``'NVIDIA_TESLA_T4:2'`` -> ``('NVIDIA_TESLA_T4', 2)``; a bare type means one."""
    if not text:
        return None, 0
    kind, _, count = text.partition(':')
    return kind.upper(), int(count or 1)


def build_requests(request: DeployRequest) -> list[dict[str, Any]]:
    """The REST calls a deployment makes, in order (``--dry-run`` prints these).

    Names only known once a call has answered are written in capitals:
    PARENT_MODEL (the registry model a new version is added to), UPLOADED_MODEL, ENDPOINT.
    """
    base = API.format(region=request.region)
    calls: list[dict[str, Any]] = []
    if not request.model_dir.startswith('gs://'):
        calls.append({'step': 'copy the model directory', 'from': request.model_dir, 'to': request.artifact_uri})
    calls.append({'step': 'find a model to add a version to', 'method': 'GET', 'url': f'{base}/{request.parent}/models',
                  'params': {'filter': f'display_name="{request.model_name}"'}})
    calls.append({'step': 'upload the model (as a new version of PARENT_MODEL if one was found)', 'method': 'POST',
                  'url': f'{base}/{request.parent}/models:upload',
                  'body': {'parentModel': 'PARENT_MODEL', 'model': {
                      'displayName': request.model_name,
                      'description': f'Audio classifier {request.metadata.model_version}: '
                                     f'{", ".join(request.metadata.labels)}',
                      'artifactUri': request.artifact_uri,
                      'containerSpec': {'imageUri': request.serving_container},
                      'labels': request.labels(),
                      'versionAliases': [version_alias(request.metadata.model_version)]}}})
    calls.append({'step': 'find the endpoint', 'method': 'GET', 'url': f'{base}/{request.parent}/endpoints',
                  'params': {'filter': f'display_name="{request.endpoint_name}"'}})
    calls.append({'step': 'create the endpoint (only if none was found)', 'method': 'POST',
                  'url': f'{base}/{request.parent}/endpoints',
                  'body': {'displayName': request.endpoint_name, 'labels': {'source': 'audio-pipeline'}}})
    calls.append({'step': 'deploy the model with all traffic', 'method': 'POST',
                  'url': f'{base}/{request.parent}/endpoints/ENDPOINT:deployModel',
                  'body': {'deployedModel': {
                      'model': 'UPLOADED_MODEL',
                      'displayName': deployed_name(request),
                      'dedicatedResources': {'machineSpec': request.machine_spec(),
                                             'minReplicaCount': request.min_replicas,
                                             'maxReplicaCount': request.max_replicas}},
                      'trafficSplit': {'0': 100}}})
    return calls


def version_alias(model_version: str) -> str:
    # Aliases must start with a letter: [a-z][a-z0-9-]{0,126}.
    return 'v-' + label_value(model_version).replace('_', '-')


def deployed_name(request: DeployRequest) -> str:
    return f'{request.model_name}-{label_value(request.metadata.model_version)}'


def endpoint_id(resource_name: str) -> str:
    """``projects/P/locations/R/endpoints/123`` -> ``'123'``."""
    match = re.fullmatch(r'projects/[^/]+/locations/[^/]+/endpoints/([^/]+)', resource_name or '')
    if not match:
        raise ValueError(f'not an endpoint resource name: {resource_name!r}')
    return match.group(1)


def choose_endpoint(endpoints: Sequence[Any], display_name: str) -> Optional[Any]:
    """The newest endpoint with this display name, if any (display names need not be unique)."""
    named = [e for e in endpoints if e.display_name == display_name]
    return max(named, key=lambda e: e.create_time) if named else None


def copy_model_dir(local_dir: str, gcs_dir: str) -> None:
    import os

    from apache_beam.io.filesystems import FileSystems

    for root, _, files in os.walk(local_dir):
        for name in files:
            src = os.path.join(root, name)
            with open(src, 'rb') as f_in, FileSystems.create(
                    FileSystems.join(gcs_dir, os.path.relpath(src, local_dir))) as f_out:
                f_out.write(f_in.read())


def deploy_local(request: DeployRequest, api_endpoint: str) -> str:
    """Registers the model directory with a local endpoint (``stack/vertex_endpoint.py``); its resource name."""
    import json as json_module
    import os
    import urllib.request

    artifact = request.model_dir if request.model_dir.startswith('gs://') else os.path.abspath(request.model_dir)
    body = {'project': request.project, 'location': request.region, 'display_name': request.endpoint_name,
            'artifact_uri': artifact}
    call = urllib.request.Request(api_endpoint.rstrip('/') + '/local/deploy', data=json_module.dumps(body).encode(),
                                  method='POST', headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(call, timeout=120) as answer:
        return json_module.loads(answer.read())['name']


def deploy(request: DeployRequest, sdk=None, api_endpoint: Optional[str] = None) -> str:
    """Runs the deployment with the Vertex AI SDK; returns the endpoint resource name."""
    if sdk is None:
        from google.cloud import aiplatform as sdk
    sdk.init(project=request.project, location=request.region, api_endpoint=api_endpoint or None)
    if not request.model_dir.startswith('gs://'):
        copy_model_dir(request.model_dir, request.artifact_uri)
    parents = sdk.Model.list(filter=f'display_name="{request.model_name}"')
    model = sdk.Model.upload(
        display_name=request.model_name, artifact_uri=request.artifact_uri,
        serving_container_image_uri=request.serving_container, labels=request.labels(),
        description=f'Audio classifier {request.metadata.model_version}',
        parent_model=parents[0].resource_name if parents else None,
        version_aliases=[version_alias(request.metadata.model_version)], sync=True)
    endpoint = choose_endpoint(sdk.Endpoint.list(filter=f'display_name="{request.endpoint_name}"'),
                               request.endpoint_name)
    if endpoint is None:
        endpoint = sdk.Endpoint.create(display_name=request.endpoint_name, labels={'source': 'audio-pipeline'})
    model.deploy(endpoint=endpoint,
                 deployed_model_display_name=deployed_name(request),
                 machine_type=request.machine_type, accelerator_type=request.accelerator_type,
                 accelerator_count=request.accelerator_count or None, min_replica_count=request.min_replicas,
                 max_replica_count=request.max_replicas, traffic_percentage=100, sync=True)
    return endpoint.resource_name


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m model.vertex_deploy', description=__doc__.split('\n\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    d = commands.add_parser('deploy', help='upload to the Model Registry and deploy to an endpoint')
    d.add_argument('--model', required=True, help='exported model directory, local or gs://')
    d.add_argument('--project', required=True)
    d.add_argument('--region', required=True, help='e.g. europe-west4')
    d.add_argument('--staging', help='gs:// prefix a local --model is copied under (as PREFIX/<model_version>)')
    d.add_argument('--model-name', default='audio-classifier', help='Model Registry display name')
    d.add_argument('--endpoint-name', default='audio-classifier', help='endpoint display name (reused if found)')
    d.add_argument('--machine-type', default=DEFAULT_MACHINE_TYPE)
    d.add_argument('--accelerator', help='TYPE[:COUNT], e.g. NVIDIA_TESLA_T4:1 (selects the GPU container)')
    d.add_argument('--min-replicas', type=int, default=1)
    d.add_argument('--max-replicas', type=int, default=1)
    d.add_argument('--tf-version', default=DEFAULT_TF_VERSION, help='prebuilt TF serving container version')
    d.add_argument('--container-uri', help='serving image instead of the prebuilt TensorFlow one')
    d.add_argument('--dry-run', action='store_true', help='print the requests, make none')
    d.add_argument('--api-endpoint', help='http://127.0.0.1:PORT: the local endpoint of `python -m stack start` '
                                          '(serves --model as it is); https://HOST or HOST: another Vertex AI API host')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None, sdk=None) -> str:
    args = parse_args(argv)
    accelerator_type, accelerator_count = parse_accelerator(args.accelerator)
    request = DeployRequest(
        model_dir=args.model, project=args.project, region=args.region, metadata=load_metadata(args.model),
        staging=args.staging, model_name=args.model_name, endpoint_name=args.endpoint_name,
        machine_type=args.machine_type, accelerator_type=accelerator_type, accelerator_count=accelerator_count,
        min_replicas=args.min_replicas, max_replicas=args.max_replicas, tf_version=args.tf_version,
        container_uri=args.container_uri)
    if args.dry_run:
        text = json.dumps(build_requests(request), indent=2)
        print(text)
        return text
    local = is_local_endpoint(args.api_endpoint)
    name = deploy_local(request, args.api_endpoint) if local else deploy(request, sdk, args.api_endpoint)
    print(name)
    model_uri = request.model_dir if local else request.artifact_uri
    extra = f' --vertex_api_endpoint {args.api_endpoint}' if args.api_endpoint else ''
    print(f'endpoint id {endpoint_id(name)}; run the pipeline with --model_endpoint {name} '
          f'--model_uri {model_uri}{extra}', file=sys.stderr)
    return name


def is_local_endpoint(api_endpoint: Optional[str]) -> bool:
    """``http://`` to a loopback address: the local endpoint (``model.vertex_handler.ApiEndpoint`` checks it)."""
    if not api_endpoint:
        return False
    from model.vertex_handler import ApiEndpoint

    return ApiEndpoint.parse(api_endpoint).anonymous


if __name__ == '__main__':
    main()
