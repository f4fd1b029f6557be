"""The template spec build.sh uploads: made by the installed gcloud itself (``--print-only``, offline), with
the workers' image written in by templates/flex_spec.py, and read back by gcloud's own Dataflow API
messages. Whatever launches the template (run.sh, the Console, the REST API, Cloud Scheduler, Airflow)
gets its default environment, workers' image included."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from templates.flex_spec import with_worker_image
from tests.templates.gcloud_sdk import offline_env, require_sdk, run_gcloud_python
from tests.templates.script_runner import PROJECT, TEMPLATES, dry_run, find, flag_value

TAG = 'v1'
IMAGE = f'us-central1-docker.pkg.dev/{PROJECT}/audio-pipeline/audio-pipeline:{TAG}'
SUBNETWORK = 'regions/us-central1/subnetworks/audio'


@pytest.fixture(scope='module')
def built_spec(tmp_path_factory) -> dict:
    """build.sh's own commands, run for real: gcloud prints the spec, flex_spec.py adds the workers' image."""
    require_sdk()
    commands = dry_run('build.sh', TAG=TAG, SUBNETWORK=SUBNETWORK, DISABLE_PUBLIC_IPS='1')
    (build,) = find(commands, 'gcloud', 'dataflow', 'flex-template', 'build')
    assert '--print-only' in build
    printed = subprocess.run(build, capture_output=True, text=True, timeout=120, env=offline_env())
    assert printed.returncode == 0, printed.stderr[-2000:]
    spec_file = tmp_path_factory.mktemp('spec') / 'spec.json'
    spec_file.write_text(printed.stdout)

    (patch,) = find(commands, 'python3')
    assert patch[1] == str(TEMPLATES / 'flex_spec.py') and patch[3] == IMAGE
    (upload, _) = find(commands, 'gcloud', 'storage', 'cp')
    assert upload[3] == patch[2] and upload[4] == build[4]   # the patched file is what gets uploaded
    subprocess.run([sys.executable, patch[1], str(spec_file), IMAGE], check=True, timeout=60)
    return json.loads(spec_file.read_text())


def test_the_spec_names_the_image_for_the_launcher_and_for_the_workers(built_spec):
    assert built_spec['image'] == IMAGE
    assert built_spec['defaultEnvironment']['sdkContainerImage'] == IMAGE


def test_the_default_environment_holds_what_every_launch_needs(built_spec):
    environment = built_spec['defaultEnvironment']
    assert environment['serviceAccountEmail'] == f'audio-pipeline-worker@{PROJECT}.iam.gserviceaccount.com'
    assert environment['machineType'] == 'n2-standard-4'
    assert environment['tempLocation'] == f'gs://{PROJECT}-audio-dataflow/temp'
    assert environment['stagingLocation'] == f'gs://{PROJECT}-audio-dataflow/staging'
    assert environment['subnetwork'] == SUBNETWORK and environment['ipConfiguration'] == 'WORKER_IP_PRIVATE'
    assert {p['name'] for p in built_spec['metadata']['parameters']} >= {'input_subscription', 'model_uri'}
    assert built_spec['sdkInfo'] == {'language': 'PYTHON'}


READ_SPEC = '''
import json, sys
from apitools.base.py import encoding
from googlecloudsdk.generated_clients.apis.dataflow.v1b3 import dataflow_v1b3_messages as messages
spec = encoding.JsonToMessage(messages.ContainerSpec, sys.argv[1])
print(json.dumps({"sdkContainerImage": spec.defaultEnvironment.sdkContainerImage,
                  "unrecognized": [m.all_unrecognized_fields() for m in (spec, spec.defaultEnvironment)]}))
'''


def test_the_dataflow_api_reads_every_field_of_the_spec(built_spec):
    """gcloud's generated Dataflow v1b3 messages: a misspelt field would be left unrecognized."""
    misspelt = {**built_spec, 'defaultEnvironment': {'sdkContainerImages': IMAGE}}
    unrecognized = json.loads(run_gcloud_python(READ_SPEC, json.dumps(misspelt)))['unrecognized']
    assert unrecognized == [[], ['sdkContainerImages']]
    answer = json.loads(run_gcloud_python(READ_SPEC, json.dumps(built_spec)))
    assert answer['sdkContainerImage'] == IMAGE
    assert answer['unrecognized'] == [[], []]


def test_the_spec_tool_refuses_a_workers_image_other_than_the_launchers():
    with pytest.raises(ValueError, match='one image'):
        with_worker_image({'image': 'a:1', 'defaultEnvironment': {}}, 'b:2')
    assert with_worker_image({'image': 'a:1'}, 'a:1')['defaultEnvironment'] == {'sdkContainerImage': 'a:1'}


def test_run_sh_no_longer_reads_the_image_from_the_spec():
    commands = dry_run('run.sh', 'streaming')
    assert find(commands, 'gcloud', 'storage', 'cat') == []
    (launch,) = find(commands, 'gcloud', 'dataflow', 'flex-template', 'run')
    assert flag_value(launch, '--additional-pipeline-options') is None   # the spec's image serves
