"""A stand-in for the Compute Engine metadata server, so credential lookup ends at once.

Beam looks up Google credentials before its first Cloud Storage call and, when
there are none, retries with backoff for 20-30 s before it connects anonymously;
its ``--no_auth`` option does not reach its Cloud Storage client, and every
worker process repeats the lookup. With ``GCE_METADATA_HOST`` and
``GCE_METADATA_IP`` pointing here, google-auth finds "Compute Engine"
credentials on the first try: a placeholder token that the emulators ignore.
This is environment only (the stack sets it, ``python -m stack env`` prints
it), so the pipeline runs unchanged. Never set it outside the local stack.

    python -m stack.metadata_server --port 0 --project local-project
"""
from __future__ import annotations

import argparse
import json
from http import server

FLAVOR = {'Metadata-Flavor': 'Google'}
TOKEN = {'access_token': 'local-emulator-token', 'expires_in': 3600, 'token_type': 'Bearer'}


def answers(project: str) -> dict[str, object]:
    """Path (without query) -> body of the few metadata paths google-auth reads."""
    account = f'emulator@{project}.iam.gserviceaccount.com'
    base = '/computeMetadata/v1/'
    return {
        '/': '',
        base + 'project/project-id': project,
        base + 'universe/universe-domain': 'googleapis.com',
        base + 'instance/service-accounts/default/': {'email': account, 'aliases': ['default'],
                                                      'scopes': ['https://www.googleapis.com/auth/cloud-platform']},
        base + 'instance/service-accounts/default/email': account,
        base + 'instance/service-accounts/default/token': TOKEN,
    }


def make_handler(project: str):
    table = answers(project)

    class Handler(server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = table.get(self.path.split('?', 1)[0])
            if body is None:
                self.send_response(404)
                payload, kind = b'not found', 'text/plain'
            else:
                self.send_response(200)
                is_json = isinstance(body, dict)
                payload = (json.dumps(body) if is_json else str(body)).encode()
                kind = 'application/json' if is_json else 'application/text'
            for key, value in FLAVOR.items():
                self.send_header(key, value)
            self.send_header('Content-Type', kind)
            self.send_header('Content-Length', str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):  # one line per token refresh would drown the log
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--project', required=True)
    args = parser.parse_args()
    server.ThreadingHTTPServer((args.host, args.port), make_handler(args.project)).serve_forever()


if __name__ == '__main__':
    main()
