"""A local Vertex AI prediction endpoint: Vertex's REST surface for online prediction, on this machine.

    python -m stack.vertex_endpoint serve --port 18123 --model artifacts/models/demo   # endpoint 1
    python -m stack.vertex_endpoint fault --url http://127.0.0.1:18123 --throttle 5     # the next 5 get 429

Routes (what ``google-cloud-aiplatform`` calls with ``api_transport='rest'``):

- ``GET  /v1/projects/{p}/locations/{l}/endpoints/{e}``: the endpoint, with its one deployed model (the
  lookup ``aiplatform.Endpoint(...)`` and ``list_models()`` make);
- ``POST /v1/projects/{p}/locations/{l}/endpoints/{e}:predict``: ``{"instances": [...]}`` ->
  ``{"predictions": [...], "deployedModelId": ...}``, one prediction per instance, in order, computed by the
  model directory's SavedModel ``serving_default`` signature, as Vertex AI's prebuilt TensorFlow container
  (TF Serving's REST ``instances`` format) does;
- ``POST /local/deploy`` ``{"project", "location", "display_name", "artifact_uri"}``: what
  ``python -m model.vertex_deploy deploy --api-endpoint http://...`` does here instead of the Model Registry
  upload and ``deployModel``: serves the directory (local or ``gs://`` through Beam's FileSystems) on the
  endpoint of that display name, a new one if there is none; answers its resource name;
- ``POST /local/faults`` (JSON, any of the fields of ``Faults``), ``POST /local/reset``, ``GET /local/stats``:
  fault injection on demand and what the endpoint saw (requests, answers by status, request sizes).

Errors are Google's JSON error body (``{"error": {"code", "message", "status"}}``), which the client maps to
the same exceptions as a real endpoint's: 429 ``TooManyRequests``, 503 ``ServiceUnavailable``, 400
``BadRequest``. A request body over ``max_request_bytes`` (Vertex AI public endpoints: 1,572,864 bytes) is
refused with 400, as a public endpoint does. Faults apply to ``:predict`` only: a quota or a scaling event
does not hide the endpoint's description.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from http import server
from typing import Any, Optional

MAX_REQUEST_BYTES = 1_572_864   # Vertex AI public endpoints refuse larger prediction requests (400)
ENDPOINT_PATH = re.compile(r'^/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/endpoints/'
                           r'(?P<endpoint>[^/:]+)(?P<verb>:predict)?$')
QUOTA_MESSAGE = ('Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model '
                 '(local fault injection)')
STATUS_NAMES = {400: 'INVALID_ARGUMENT', 404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED', 503: 'UNAVAILABLE',
                500: 'INTERNAL'}


@dataclass
class Faults:
    """What goes wrong, on demand. Counts are of ``:predict`` requests from now on."""
    throttle: int = 0                   # the next N requests get 429 (a quota burst)
    unavailable_seconds: float = 0.0    # 503 for this long from the next request on (autoscaling, a rollout)
    latency_seconds: float = 0.0        # added to every answer
    max_request_bytes: int = MAX_REQUEST_BYTES   # 400 over this size
    wrong_count: int = 0                # the next N answers hold one prediction too few
    poison: Optional[float] = None      # an answer one prediction short for any request with an instance whose
    #                                     first sample is this value (a model that fails on some input)


@dataclass
class Stats:
    requests: int = 0
    answers: dict[str, int] = field(default_factory=dict)   # HTTP status -> count
    predict_bytes: list[int] = field(default_factory=list)  # body size of each :predict request
    instances: int = 0                                       # instances in answered requests


class Deployment:
    """One endpoint's deployed model: the SavedModel's serving signature, called one request at a time."""

    def __init__(self, endpoint_id: str, display_name: str, artifact_uri: str):
        from model.metadata import load_metadata

        self.endpoint_id, self.display_name, self.artifact_uri = endpoint_id, display_name, artifact_uri
        self.metadata = load_metadata(artifact_uri)
        self.deployed_model_id = str(1000 + int(endpoint_id)) if endpoint_id.isdigit() else f'{endpoint_id}-model'
        self._serve: Any = None      # loaded at the first prediction: a stack that predicts nothing needs no TF
        self._lock = threading.Lock()   # one replica: requests queue, as on one serving container
        self.created = time.strftime('%Y-%m-%dT%H:%M:%S.000000Z', time.gmtime())

    def predict(self, instances: list) -> list:
        from model.handlers import import_tensorflow_for_serving
        from model.local_copy import local_model_dir
        from model.metadata import INPUT_NAME, OUTPUT_NAME, SIGNATURE

        with self._lock:
            tf = import_tensorflow_for_serving()
            if self._serve is None:
                self._serve = tf.saved_model.load(local_model_dir(self.artifact_uri)).signatures[SIGNATURE]
            return self._serve(**{INPUT_NAME: tf.constant(instances, tf.float32)})[OUTPUT_NAME].numpy().tolist()

    def resource(self, project: str, location: str) -> dict[str, Any]:
        name = f'projects/{project}/locations/{location}/endpoints/{self.endpoint_id}'
        return {'name': name, 'displayName': self.display_name, 'createTime': self.created,
                'updateTime': self.created, 'etag': 'local',
                'deployedModels': [{'id': self.deployed_model_id,
                                    'model': f'projects/{project}/locations/{location}/models/{self.endpoint_id}',
                                    'displayName': f'{self.display_name}-{self.metadata.model_version}',
                                    'createTime': self.created,
                                    'dedicatedResources': {'machineSpec': {'machineType': 'local'},
                                                           'minReplicaCount': 1, 'maxReplicaCount': 1}}],
                'trafficSplit': {self.deployed_model_id: 100},
                'labels': {'model_version': self.metadata.model_version}}


class LocalVertex:
    """The endpoints, the faults and the counters of one server."""

    def __init__(self):
        self._lock = threading.Lock()
        self.endpoints: dict[str, Deployment] = {}
        self.faults = Faults()
        self._unavailable_until = 0.0
        self._outage_pending = False   # an outage starts at the next predict request
        self.stats = Stats()

    def deploy(self, artifact_uri: str, display_name: str = 'audio-classifier',
               endpoint_id: Optional[str] = None) -> Deployment:
        with self._lock:
            if endpoint_id is None:
                same = [e for e in self.endpoints.values() if e.display_name == display_name]
                endpoint_id = same[-1].endpoint_id if same else str(len(self.endpoints) + 1)
        deployment = Deployment(endpoint_id, display_name, artifact_uri)   # loads outside the lock
        with self._lock:
            self.endpoints[endpoint_id] = deployment
        return deployment

    def set_faults(self, changes: dict[str, Any]) -> Faults:
        with self._lock:
            unknown = set(changes) - set(asdict(self.faults))
            if unknown:
                raise ValueError(f'unknown fault(s) {sorted(unknown)}; known: {sorted(asdict(self.faults))}')
            for key, value in changes.items():
                setattr(self.faults, key, value)
            if changes.get('unavailable_seconds') is not None:
                self._outage_pending, self._unavailable_until = True, 0.0
            return self.faults

    def reset(self) -> None:
        with self._lock:
            self.faults, self.stats, self._unavailable_until = Faults(), Stats(), 0.0
            self._outage_pending = False

    def count(self, status: int) -> None:
        with self._lock:
            self.stats.answers[str(status)] = self.stats.answers.get(str(status), 0) + 1

    def predict_fault(self, body_bytes: int) -> tuple[Optional[tuple[int, str]], bool]:
        """(an error to answer instead, whether to drop one prediction), consuming one-shot faults."""
        with self._lock:
            self.stats.predict_bytes.append(body_bytes)
            f = self.faults
            if f.throttle > 0:
                f.throttle -= 1
                return (429, QUOTA_MESSAGE), False
            if self._outage_pending:
                self._outage_pending = False
                self._unavailable_until = time.monotonic() + f.unavailable_seconds
            if time.monotonic() < self._unavailable_until:
                return (503, 'The service is currently unavailable (local fault injection).'), False
            if body_bytes > f.max_request_bytes:
                too_large = f'Request payload size exceeds the limit: {f.max_request_bytes} bytes (got {body_bytes}).'
                return (400, too_large), False
            short = f.wrong_count > 0
            if short:
                f.wrong_count -= 1
            return None, short


def make_handler(vertex: LocalVertex):

    class Handler(server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'   # keep-alive: the client's session reuses its connection

        def _send(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header('Content-Type', 'application/json; charset=UTF-8')
            self.send_header('Content-Length', str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            vertex.count(status)

        def _error(self, status: int, message: str) -> None:
            self._send(status, {'error': {'code': status, 'message': message,
                                          'status': STATUS_NAMES.get(status, 'UNKNOWN')}})

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get('Content-Length') or 0))

        def do_GET(self):
            with vertex._lock:
                vertex.stats.requests += 1
            path = self.path.split('?', 1)[0]
            if path == '/local/stats':
                return self._send(200, asdict(vertex.stats) | {'faults': asdict(vertex.faults)})
            if path in ('/', '/local/health'):
                return self._send(200, {'endpoints': sorted(vertex.endpoints)})
            match = ENDPOINT_PATH.match(path)
            if not match or match['verb']:
                return self._error(404, f'no such route: GET {path}')
            deployment = vertex.endpoints.get(match['endpoint'])
            if deployment is None:
                return self._error(404, f'Endpoint {path[4:]} not found.')
            self._send(200, deployment.resource(match['project'], match['location']))

        def do_POST(self):
            with vertex._lock:
                vertex.stats.requests += 1
            path = self.path.split('?', 1)[0]
            body = self._body()
            try:
                if path == '/local/faults':
                    return self._send(200, asdict(vertex.set_faults(json.loads(body or b'{}'))))
                if path == '/local/reset':
                    vertex.reset()
                    return self._send(200, {})
                if path == '/local/deploy':
                    request = json.loads(body)
                    deployment = vertex.deploy(request['artifact_uri'], request.get('display_name', 'audio-classifier'))
                    return self._send(200, deployment.resource(request['project'], request['location']))
            except (ValueError, KeyError, OSError) as e:
                return self._error(400, f'{type(e).__name__}: {e}')
            match = ENDPOINT_PATH.match(path)
            if not match or not match['verb']:
                return self._error(404, f'no such route: POST {path}')
            self._predict(match, body)

        def _predict(self, match, body: bytes) -> None:
            deployment = vertex.endpoints.get(match['endpoint'])
            if deployment is None:
                return self._error(404, f'Endpoint {match["endpoint"]} not found.')
            if vertex.faults.latency_seconds:
                time.sleep(vertex.faults.latency_seconds)
            error, short = vertex.predict_fault(len(body))
            if error:
                return self._error(*error)
            try:
                instances = json.loads(body)['instances']
                predictions = deployment.predict(instances)
            except Exception as e:   # what TF Serving answers for instances it cannot feed to the signature
                return self._error(400, f'{type(e).__name__}: {str(e)[:500]}')
            poison = vertex.faults.poison
            if short or (poison is not None and any(row and row[0] == poison for row in instances)):
                predictions = predictions[:-1]
            with vertex._lock:
                vertex.stats.instances += len(instances)
            self._send(200, {'predictions': predictions, 'deployedModelId': deployment.deployed_model_id,
                             'model': f'projects/{match["project"]}/locations/{match["location"]}/models/'
                                      f'{deployment.endpoint_id}',
                             'modelDisplayName': deployment.display_name})

        def log_message(self, *args):   # one line per request would drown the log
            pass

    return Handler


class VertexServer:
    """The server in a thread of this process (tests, benchmarks); ``serve`` runs it as a process."""

    def __init__(self, host: str = '127.0.0.1', port: int = 0):
        self.vertex = LocalVertex()
        self._httpd = server.ThreadingHTTPServer((host, port), make_handler(self.vertex))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f'http://{host}:{self.port}'
        self._thread: Optional[threading.Thread] = None

    def start(self) -> 'VertexServer':
        self._thread = threading.Thread(target=self._httpd.serve_forever, name='local-vertex', daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> 'VertexServer':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_command(host: str, port: int) -> list[str]:
    """How ``python -m stack start`` runs it: the demo model (if made) on endpoint 1, more by deploying."""
    import os

    from stack.config import REPO_ROOT

    argv = [sys.executable, '-m', 'stack.vertex_endpoint', 'serve', '--host', host, '--port', str(port)]
    demo = os.path.join(REPO_ROOT, 'artifacts', 'models', 'demo')
    return argv + (['--model', demo] if os.path.exists(os.path.join(demo, 'metadata.json')) else [])


def endpoint_name(project: str, location: str, endpoint_id: str) -> str:
    return f'projects/{project}/locations/{location}/endpoints/{endpoint_id}'


def post(url: str, path: str, body: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    """POSTs JSON to a local endpoint's admin route (fault injection, deploy); its JSON answer."""
    request = urllib.request.Request(url.rstrip('/') + path, data=json.dumps(body).encode(), method='POST',
                                     headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read())


def get(url: str, path: str, timeout: float = 10.0) -> dict[str, Any]:
    with urllib.request.urlopen(url.rstrip('/') + path, timeout=timeout) as answer:
        return json.loads(answer.read())


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m stack.vertex_endpoint', description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    serve = sub.add_parser('serve', help='run the endpoint (until killed)')
    serve.add_argument('--host', default='127.0.0.1')
    serve.add_argument('--port', type=int, required=True)
    serve.add_argument('--model', help='model directory to serve on endpoint 1 from the start')
    fault = sub.add_parser('fault', help='inject faults into a running endpoint (or --reset / --stats)')
    fault.add_argument('--url', required=True, help='e.g. http://127.0.0.1:9080')
    fault.add_argument('--throttle', type=int, help='429 for the next N predict requests')
    fault.add_argument('--unavailable-seconds', type=float, help='503 for T seconds from the next predict request')
    fault.add_argument('--latency-seconds', type=float, help='added to every predict answer')
    fault.add_argument('--max-request-bytes', type=int, help=f'400 over this size (default {MAX_REQUEST_BYTES})')
    fault.add_argument('--wrong-count', type=int, help='the next N answers hold one prediction too few')
    fault.add_argument('--reset', action='store_true', help='no faults, counters zeroed')
    fault.add_argument('--stats', action='store_true', help='print what the endpoint saw')
    args = parser.parse_args(argv)
    if args.command == 'serve':
        vertex_server = VertexServer(args.host, args.port)
        if args.model:
            vertex_server.vertex.deploy(args.model, endpoint_id='1')
        print(f'local Vertex AI endpoint on {vertex_server.url}', file=sys.stderr, flush=True)
        vertex_server._httpd.serve_forever()
        return 0
    if args.reset:
        post(args.url, '/local/reset', {})
    changes = {key: value for key, value in vars(args).items()
               if key in Faults.__dataclass_fields__ and value is not None}
    if changes:
        print(json.dumps(post(args.url, '/local/faults', changes)))
    if args.stats:
        print(json.dumps(get(args.url, '/local/stats'), indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
