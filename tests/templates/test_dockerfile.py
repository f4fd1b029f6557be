"""The image, checked without a Docker engine (Cloud Build builds it): the Dockerfile's instructions,
and the files that reach the build through .gcloudignore and .dockerignore.
"""
from __future__ import annotations

import json
import re

import pytest
import yaml
from docker.utils.build import exclude_paths

from tests.templates.gcloud_sdk import run_gcloud_python
from tests.templates.script_runner import REPO, TEMPLATES

PACKAGES = ('audio', 'cloud', 'model', 'pipeline', 'results', 'transforms')


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each Dockerfile instruction, continuation lines joined."""
    text = re.sub(r'\s*\\\n\s*', ' ', (REPO / 'Dockerfile').read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith('#'):
            keyword, _, args = line.partition(' ')
            found.append((keyword.upper(), args.strip()))
    return found


def requirement_pin(name: str) -> str:
    for line in (REPO / 'requirements.txt').read_text().splitlines():
        match = re.match(rf'{re.escape(name)}(\[[^\]]*\])?==(\S+)', line.strip())
        if match:
            return match.group(2)
    raise AssertionError(f'{name} is not pinned in requirements.txt')


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == 'FROM')
    return steps[last_from:]


def test_worker_base_is_beams_sdk_image_at_the_pinned_beam_version():
    keyword, image = final_stage()[0]
    assert image == f'apache/beam_python3.11_sdk:{requirement_pin("apache-beam")}'
    assert "python_requires='>=3.11,<3.12'" in (REPO / 'setup.py').read_text()


def test_launcher_binary_comes_from_googles_launcher_image():
    steps = instructions()
    args = dict(a.split('=', 1) for k, a in steps if k == 'ARG' and '=' in a)
    launcher_stage = next(a for k, a in steps if k == 'FROM' and a.endswith(' AS template_launcher'))
    assert launcher_stage == '${TEMPLATE_LAUNCHER_IMAGE} AS template_launcher'
    assert args['TEMPLATE_LAUNCHER_IMAGE'].startswith(
        'gcr.io/dataflow-templates-base/python311-template-launcher-base:')
    copies = [a for k, a in final_stage() if k == 'COPY' and a.startswith('--from=')]
    assert copies == [('--from=template_launcher /opt/google/dataflow/python_template_launcher '
                       '/opt/google/dataflow/python_template_launcher')]


def test_the_launcher_runs_pipeline_main_and_workers_boot_through_beam():
    env = dict(a.split('=', 1) for k, a in final_stage() if k == 'ENV')
    workdir = next(a for k, a in final_stage() if k == 'WORKDIR')
    assert env['FLEX_TEMPLATE_PYTHON_PY_FILE'] == f'{workdir}/pipeline/main.py'
    assert (REPO / 'pipeline' / 'main.py').exists()
    # Installed at build time: the launcher must not pip install again at every launch.
    assert 'FLEX_TEMPLATE_PYTHON_REQUIREMENTS_FILE' not in env and 'FLEX_TEMPLATE_PYTHON_SETUP_FILE' not in env
    assert final_stage()[-1] == ('ENTRYPOINT', '["/opt/apache/beam/boot"]')


def test_dependencies_are_installed_once_from_the_pinned_file_then_checked():
    runs = [a for k, a in final_stage() if k == 'RUN']
    installs = [r for r in runs if 'pip install' in r]
    assert len(installs) == 2
    assert installs[0] == 'pip install --no-cache-dir -r requirements.txt'
    assert 'pip install --no-cache-dir --no-deps .' in installs[1]  # the package, nothing new
    assert 'pip check' in installs[1]


def test_no_system_packages_the_decoders_bring_their_own_libraries():
    """libsndfile and FFmpeg come inside the soundfile and av wheels; nothing runs the ffmpeg program."""
    assert not [a for k, a in final_stage() if k == 'RUN' and 'apt-get' in a]
    for package in ('soundfile', 'av'):
        requirement_pin(package)
    for path in REPO.glob('*/**/*.py'):
        if path.parts[len(REPO.parts)] in PACKAGES:   # no 'ffmpeg' / "ffmpeg ..." command line anywhere
            assert not re.search(r'[\'"]ffmpeg[\'" ]', path.read_text()), path


def test_the_build_checks_the_worker_imports_decodes_and_reads_cloud_storage():
    steps = final_stage()
    check = next(i for i, (k, a) in enumerate(steps) if k == 'RUN' and 'pipeline.worker_check' in a)
    package_install = next(i for i, (k, a) in enumerate(steps) if k == 'RUN' and '--no-deps .' in a)
    assert check > package_install   # checks the installed image, after pip check
    assert steps[check][1] == 'python -m pipeline.worker_check ${GCS_CHECK_PATH:+--read "$GCS_CHECK_PATH"}'
    assert ('ARG', 'GCS_CHECK_PATH=') in steps
    recipe = yaml.safe_load((TEMPLATES / 'cloudbuild.yaml').read_text())
    args = recipe['steps'][0]['args']
    assert '--network=cloudbuild' in args   # RUN steps get the build service account's credentials
    assert args[args.index('--build-arg') + 1] == 'GCS_CHECK_PATH=${_GCS_CHECK_PATH}'


def test_every_package_setup_py_installs_is_copied():
    copied = {source for k, a in final_stage() if k == 'COPY' and not a.startswith('--from')
              for source in a.split()[:-1]}
    assert {'requirements.txt', 'requirements.in', 'setup.py', *PACKAGES} <= copied
    setup = (REPO / 'setup.py').read_text()
    for package in PACKAGES:
        assert f"'{package}'" in setup


def build_context_needs() -> set[str]:
    """Files the Dockerfile's COPY instructions read from the build context."""
    needs = {'Dockerfile'}
    for keyword, args in final_stage():
        if keyword == 'COPY' and not args.startswith('--from'):
            for name in args.split()[:-1]:
                source = REPO / name
                needs |= ({str(p.relative_to(REPO)) for p in source.rglob('*.py') if '__pycache__' not in p.parts}
                          if source.is_dir() else {name})
    return needs


def test_docker_build_context_holds_what_the_dockerfile_copies_and_no_local_state():
    patterns = [line.strip() for line in (REPO / '.dockerignore').read_text().splitlines()
                if line.strip() and not line.startswith('#')]
    context = set(exclude_paths(str(REPO), patterns, dockerfile='Dockerfile'))
    assert build_context_needs() <= context
    assert not {p for p in context if p.split('/')[0] in ('.venv', '.git', 'tests', 'demo', 'artifacts', 'app')}
    assert not {p for p in context if '__pycache__' in p}


def test_cloud_build_upload_holds_what_the_dockerfile_copies_and_no_local_state():
    """gcloud's own .gcloudignore reading decides what `gcloud builds submit` uploads."""
    listed = run_gcloud_python('''
import json, sys
from googlecloudsdk.command_lib.util import gcloudignore
chooser = gcloudignore.GetFileChooserForDir(sys.argv[1], write_on_disk=False)
print(json.dumps(sorted(chooser.GetIncludedFiles(sys.argv[1], include_dirs=False))))
''', str(REPO))
    uploaded = set(json.loads(listed))
    assert build_context_needs() <= uploaded
    assert not {p for p in uploaded if p.split('/')[0] in ('.venv', '.git', 'tests', 'demo', 'artifacts', 'app')}


def test_cloud_build_recipe_builds_and_pushes_the_image_build_sh_names():
    recipe = yaml.safe_load((TEMPLATES / 'cloudbuild.yaml').read_text())
    (step,) = recipe['steps']
    assert step['name'] == 'gcr.io/cloud-builders/docker'
    assert step['args'][0] == 'build' and step['args'][-1] == '.'
    assert step['args'][step['args'].index('--tag') + 1] == '${_IMAGE}'
    assert recipe['images'] == ['${_IMAGE}']
    # A user-managed build service account requires logs that do not need a bucket.
    assert recipe['options']['logging'] == 'CLOUD_LOGGING_ONLY'
    assert '--substitutions="_IMAGE=$IMAGE,_GCS_CHECK_PATH=' in (TEMPLATES / 'build.sh').read_text()


@pytest.mark.parametrize('path', ['Dockerfile', '.dockerignore', '.gcloudignore'])
def test_build_files_are_committed_at_the_repository_root(path):
    assert (REPO / path).is_file()
