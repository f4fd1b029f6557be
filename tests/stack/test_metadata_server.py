"""The metadata-server stand-in: with it, google-auth (and so Beam) finds credentials on the first try."""
import json
import subprocess
import sys

import pytest

from stack import processes
from stack.config import REPO_ROOT

pytestmark = pytest.mark.e2e
LOOKUP = '''
import json
import google.auth, google.auth.transport.requests
from apache_beam.internal.gcp import auth
from apache_beam.options.pipeline_options import PipelineOptions
credentials, project = google.auth.default()
credentials.refresh(google.auth.transport.requests.Request())
beam = auth.get_service_credentials(PipelineOptions())
print(json.dumps({"project": project, "token": credentials.token, "beam_has_credentials": beam is not None}))
'''


def test_credential_lookup_ends_at_once_with_a_placeholder_token(tmp_path):
    port = processes.free_port()
    log = str(tmp_path / 'metadata.log')
    server = processes.spawn([sys.executable, '-m', 'stack.metadata_server', '--port', str(port),
                              '--project', 'local-project'], log)
    try:
        processes.wait_until_ready('metadata', server.pid, processes.http_ready(f'http://127.0.0.1:{port}/'), log)
        env = {'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path), 'PYTHONPATH': REPO_ROOT,
               'GCE_METADATA_HOST': f'127.0.0.1:{port}', 'GCE_METADATA_IP': f'127.0.0.1:{port}'}
        # Without the stand-in Beam would retry for 20-30 s here and then go anonymous (None).
        done = subprocess.run([sys.executable, '-c', LOOKUP], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1]) == {
            'project': 'local-project', 'token': 'local-emulator-token', 'beam_has_credentials': True}
        assert 'Retry with exponential backoff' not in done.stderr
    finally:
        processes.stop(server.pid)
