"""The emulators (and the metadata stand-in) as one ``LocalStack``: start, provision, restart one, stop.

State (pids, ports, logs, data) lives in a state directory (``.stack/`` by
default) so that ``python -m stack stop`` in another shell finds what
``python -m stack start`` started. Tests use their own temporary state
directory and free ports, so they never touch a stack a person is running.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

from cloud.emulators import BIGQUERY, ENV_VARS, PROJECT_ENV, PUBSUB, STORAGE
from stack import processes
from stack.config import METADATA, METADATA_ENV_VARS, REPO_ROOT, SERVICES, VERTEX, StackConfig
from stack.processes import StackError

HOST = '127.0.0.1'
# Starts of an emulator whose port, chosen here, another process bound first (processes.free_port).
PORT_ATTEMPTS = 3
STATE_FILE = 'state.json'
PIPELINE = 'pipeline'
PUBSUB_INSTALL_HINT = (
    'The Pub/Sub emulator comes with the Google Cloud CLI: install the Debian package '
    'google-cloud-cli-pubsub-emulator from Google\'s apt repository, or run '
    '`gcloud components install pubsub-emulator beta`; it needs Java (Debian: default-jre-headless).')


@dataclass
class Service:
    name: str
    pid: int
    port: int
    log: str
    data_dir: str
    grpc_port: int = 0


def pubsub_emulator_problem() -> str:
    """Why the Pub/Sub emulator cannot run here ('' when it can)."""
    if not shutil.which('java'):
        return 'java not found. ' + PUBSUB_INSTALL_HINT
    gcloud = shutil.which('gcloud')
    if not gcloud:
        return 'gcloud not found. ' + PUBSUB_INSTALL_HINT
    sdk_root = os.path.dirname(os.path.dirname(os.path.realpath(gcloud)))
    if not os.path.isdir(os.path.join(sdk_root, 'platform', 'pubsub-emulator')):
        return f'the pubsub-emulator component is not installed in {sdk_root}. ' + PUBSUB_INSTALL_HINT
    return ''


def _command(name: str, config: StackConfig, port: int, grpc_port: int, data_dir: str) -> list[str]:
    if name == PUBSUB:
        return ['gcloud', 'beta', 'emulators', 'pubsub', 'start', f'--project={config.project}',
                f'--host-port={HOST}:{port}', f'--data-dir={data_dir}', '--quiet']
    if name == STORAGE:
        return [sys.executable, '-m', 'stack.storage_emulator', '--data-dir', data_dir, 'start', '--host', HOST,
                '--port', str(port), '--quiet']
    if name == VERTEX:
        from stack.vertex_endpoint import serve_command

        return serve_command(HOST, port)
    if name == METADATA:
        return [sys.executable, '-m', 'stack.metadata_server', '--host', HOST, '--port', str(port),
                '--project', config.project]
    return [sys.executable, '-m', 'stack.bqemulator_offline', 'start', '--rest-host', HOST, '--rest-port', str(port),
            '--grpc-host', HOST, '--grpc-port', str(grpc_port), '--data-dir', data_dir,
            '--project', config.project, '--log-level', 'warning']


def _ready_url(name: str, config: StackConfig, port: int) -> str:
    return {PUBSUB: f'http://{HOST}:{port}/v1/projects/{config.project}/topics',
            STORAGE: f'http://{HOST}:{port}/storage/v1/b',
            BIGQUERY: f'http://{HOST}:{port}/bigquery/v2/projects/{config.project}/datasets',
            METADATA: f'http://{HOST}:{port}/', VERTEX: f'http://{HOST}:{port}/local/health'}[name]


def child_env() -> dict:
    """This process's environment for a child of the stack: the repo importable, no emulator variables."""
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO_ROOT + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    env['BQEMU_ENABLE_FORMAT_EXTENSIONS'] = 'false'  # the Avro extension would be downloaded
    env.setdefault('CLOUDSDK_CORE_DISABLE_PROMPTS', '1')
    for var in (*ENV_VARS.values(), *METADATA_ENV_VARS):  # an emulator must not talk to another one
        env.pop(var, None)
    return env


class LocalStack:
    """The emulators of one state directory."""

    def __init__(self, state_dir: str, config: Optional[StackConfig] = None):
        self.state_dir = os.path.abspath(state_dir)
        self.config = config or StackConfig()
        self.services: dict[str, Service] = {}

    # -- state ---------------------------------------------------------------------------------------------------
    @property
    def _state_path(self) -> str:
        return os.path.join(self.state_dir, STATE_FILE)

    @classmethod
    def load(cls, state_dir: str) -> 'LocalStack':
        """The stack recorded in ``state_dir``; raises StackError if none was started there."""
        path = os.path.join(os.path.abspath(state_dir), STATE_FILE)
        if not os.path.exists(path):
            raise StackError(f'no stack started in {state_dir} (run `python -m stack start`)')
        with open(path) as f:
            state = json.load(f)
        stack = cls(state_dir, StackConfig(**state['config']))
        stack.services = {name: Service(**s) for name, s in state['services'].items()}
        return stack

    def save(self) -> None:
        os.makedirs(self.state_dir, exist_ok=True)
        state = {'config': dataclasses.asdict(self.config),
                 'services': {name: dataclasses.asdict(s) for name, s in self.services.items()}}
        tmp = self._state_path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(state, f, indent=2)
        os.replace(tmp, self._state_path)

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def start(self, fresh: bool = True) -> None:
        """Starts the three emulators and creates the resources.

        ``fresh`` wipes the data of an earlier run first. On failure everything started is stopped again.
        """
        problem = pubsub_emulator_problem()
        if problem:
            raise StackError(problem)
        if fresh:
            shutil.rmtree(os.path.join(self.state_dir, 'data'), ignore_errors=True)
        try:
            waits = [self._spawn(name) for name in SERVICES]  # in parallel: Java takes the longest
            for wait in waits:
                wait()
            self.provision()
        except BaseException:
            self.stop()
            raise

    def start_service(self, name: str) -> float:
        """Starts one emulator (on its recorded port when it ran before: a restart); seconds until it answers."""
        return self._spawn(name)()

    def _spawn(self, name: str, attempt: int = 1) -> Callable[[], float]:
        """Launches one emulator; returns the function that waits until it answers. An emulator on a port
        chosen here that finds it taken is started again on another (``PORT_ATTEMPTS`` in all)."""
        if name in self.services and processes.is_alive(self.services[name].pid):
            raise StackError(f'{name} emulator already running (pid {self.services[name].pid})')
        previous = self.services.get(name)
        wanted = {PUBSUB: self.config.pubsub_port, STORAGE: self.config.storage_port,
                  BIGQUERY: self.config.bigquery_port, METADATA: self.config.metadata_port,
                  VERTEX: self.config.vertex_port}[name]
        port = previous.port if previous else (wanted or processes.free_port())
        grpc_port = 0
        if name == BIGQUERY:
            grpc_port = previous.grpc_port if previous else (self.config.bigquery_grpc_port or processes.free_port())
        data_dir = os.path.join(self.state_dir, 'data', name)
        os.makedirs(data_dir, exist_ok=True)
        log = os.path.join(self.state_dir, f'{name}.log')
        # A restart (fault tests) appends to the log of the same emulator; a new stack starts a new log.
        env = child_env()
        if name == BIGQUERY:
            # Load jobs read gs://BUCKET/PATH from GCS_LOCAL_ROOT/BUCKET/PATH: where the storage emulator keeps
            # object bytes. So batch loads (Beam's FILE_LOADS) read what was written to the storage emulator.
            env['BQEMU_GCS_LOCAL_ROOT'] = os.path.join(self.state_dir, 'data', STORAGE, '.cloudstorage')
        if name == VERTEX and {STORAGE, METADATA} <= set(self.services):   # gs:// models, no credential stall
            env[ENV_VARS[STORAGE]] = f'http://{HOST}:{self.services[STORAGE].port}'
            env.update({var: f'{HOST}:{self.services[METADATA].port}' for var in METADATA_ENV_VARS})
        proc = processes.spawn(_command(name, self.config, port, grpc_port, data_dir), log, env,
                               append=previous is not None)
        self.services[name] = Service(name, proc.pid, port, log, data_dir, grpc_port)
        self.save()
        ready = processes.http_ready(_ready_url(name, self.config, port))
        chosen_here = previous is None and not wanted

        def wait() -> float:
            try:
                return processes.wait_until_ready(name, proc.pid, ready, log, port=port)
            except processes.PortTaken:
                if not chosen_here or attempt >= PORT_ATTEMPTS:
                    raise
                del self.services[name]
                return self._spawn(name, attempt + 1)()
        return wait

    def stop_service(self, name: str) -> None:
        """Stops one emulator by its pid; its port and data are kept for ``start_service``."""
        service = self.services.get(name)
        if service:
            processes.stop(service.pid)

    def stop(self) -> None:
        """Stops the pipeline (if one was started here) and every emulator, then forgets them."""
        for name in [PIPELINE] + list(SERVICES):
            service = self.services.get(name)
            if service:
                processes.stop(service.pid)
        self.services = {}
        if os.path.exists(self._state_path):
            os.remove(self._state_path)

    def status(self) -> dict[str, dict]:
        return {name: {'pid': s.pid, 'port': s.port, 'alive': processes.is_alive(s.pid),
                       'answers': name == PIPELINE or processes.http_ready(_ready_url(name, self.config, s.port))(),
                       'log': s.log}
                for name, s in self.services.items()}

    # -- what clients need ---------------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """The variables that point the client libraries (and so the pipeline) at this stack."""
        ports = {name: s.port for name, s in self.services.items() if name in SERVICES}
        missing = [name for name in SERVICES if name not in ports]
        if missing:
            raise StackError(f'stack in {self.state_dir} has no {", ".join(missing)} emulator')
        env = {ENV_VARS[PUBSUB]: f'{HOST}:{ports[PUBSUB]}',
               ENV_VARS[STORAGE]: f'http://{HOST}:{ports[STORAGE]}',
               ENV_VARS[BIGQUERY]: f'http://{HOST}:{ports[BIGQUERY]}',
               PROJECT_ENV: self.config.project}
        env.update({var: f'{HOST}:{ports[METADATA]}' for var in METADATA_ENV_VARS})
        return env

    @contextlib.contextmanager
    def activated(self) -> Iterator[dict[str, str]]:
        """Temporarily puts ``env()`` into this process's environment (the client libraries read it there)."""
        env = self.env()
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def provision(self) -> None:
        """Creates the buckets, topic, subscription, dataset and tables the pipeline expects (idempotent)."""
        from google.api_core import exceptions
        from google.cloud import pubsub_v1

        from results.store import open_store
        from stack import clients

        with self.activated():
            storage = clients.storage_client()
            for bucket in (self.config.upload_bucket, self.config.output_bucket):
                if storage.lookup_bucket(bucket) is None:
                    storage.create_bucket(bucket)
            publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
            with contextlib.suppress(exceptions.AlreadyExists):
                publisher.create_topic(name=self.config.topic_path)
            with contextlib.suppress(exceptions.AlreadyExists):
                subscriber.create_subscription(name=self.config.subscription_path, topic=self.config.topic_path,
                                               ack_deadline_seconds=60)
            subscriber.close()
            open_store(self.config.output_table, self.config.error_table).ensure_tables()
