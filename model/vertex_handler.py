"""RunInference on a Vertex AI endpoint serving the exported SavedModel.

Same windowing, batching and ``PredictionResult`` as the local handler (it
subclasses ``WindowedClassifierHandler``); only ``score_windows`` differs: the
windows go to the endpoint as JSON ``instances`` through Beam's
``VertexAIModelHandlerJSON`` (its request code and client-side adaptive
throttling). ``model_uri`` still supplies the metadata (labels, sample rate,
window), so it must be the directory that was deployed
(``python -m model.vertex_deploy deploy``).

Where requests go: ``api_endpoint`` None is the regional Vertex AI endpoint
(gRPC, Application Default Credentials); ``http://127.0.0.1:PORT`` is a local
endpoint (``stack/vertex_endpoint.py``), reached over REST with anonymous
credentials, and plain HTTP is allowed for loopback only; ``https://HOST`` is
REST to another host, ``HOST[:PORT]`` gRPC. The SDK's configuration is per
process, so ``load_model`` applies it in every worker process.

What happens to a request (the rule, and why):

- 429 and 5xx, timeouts and refused connections are the moment's fault: retried
  with exponential backoff and full jitter from ``initial_backoff_seconds``
  until ``retry_seconds`` (the pipeline's ``--transient_retry_seconds``) have
  passed; then the batch fails and RunInference's dead letters give each of its
  files a retryable error row (transforms/inference.py) that a replay repairs.
  Beam's own retries (a fixed 5 s first wait, 5 tries, ~155 s) are off: one
  budget, the pipeline's, for every stage.
- A 400 (e.g. over the endpoint's request size limit, or instances the model
  cannot take) or a malformed answer (not one prediction per instance) may be
  one input's fault: the request is halved until the refused window stands
  alone (asked twice, so a one-off bad answer condemns no one), and the batch
  is bisected by file, so only the files at fault get ``FileScores.error`` (one
  permanent error row each); every other file gets its scores.
- Predictions with the wrong number of labels mean the deployed model is not
  ``model_uri``'s: the batch fails (retryable rows), never a file's fault.

Public endpoints refuse requests over 1,572,864 bytes, so a batch's windows are
split into requests that fit, counting what the transport sends per sample
(``BYTES_PER_SAMPLE``); a window too large to fit alone is refused when the
handler is built, with a message naming the limit. Samples are sent rounded to
6 decimals (``SAMPLE_DECIMALS``), which shortens REST's JSON.
"""
from __future__ import annotations

import ipaddress
import logging
import random
import re
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from model.handlers import FileScores, WindowedClassifierHandler

ENDPOINT_NAME = re.compile(r'^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/endpoints/(?P<id>[^/]+)$')
MAX_REQUEST_BYTES = 1_572_864   # Vertex AI public endpoints' request size limit (1.5 MiB)
# Samples go rounded to 6 decimals. 5 were not enough: on a quiet 8 kHz hum of demo/input (peak 0.04) the demo
# model's confidence moved by 5.4e-4; with 6 by 5e-6 (the largest over demo/input), under the 1e-4 parity bound.
SAMPLE_DECIMALS = 6
# Bytes one sample costs in a request. gRPC: a protobuf Value in a ListValue (tag, length, tag, 8-byte double),
# whatever the number. REST: the client's JSON is indented, one number a line: 6 spaces, '-0.123456', ',\n'.
BYTES_PER_SAMPLE = {'grpc': 11, 'rest': 17}
ENVELOPE_BYTES = 4096           # the request's own fields, per-instance brackets
# Waits between tries on a transient failure; the budget comes from --transient_retry_seconds.
INITIAL_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
DEFAULT_RETRY_SECONDS = 600.0
# One request's limit: Vertex AI answers or gives up within 60 s on public endpoints; longer is a hung connection.
REQUEST_TIMEOUT_SECONDS = 120.0
LOOPBACK_NAMES = ('localhost',)
_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class EndpointName:
    project: str
    location: str
    endpoint_id: str

    @classmethod
    def parse(cls, name: str) -> 'EndpointName':
        match = ENDPOINT_NAME.match(name or '')
        if not match:
            raise ValueError(f'not a Vertex AI endpoint name: {name!r} '
                             f'(expected projects/PROJECT/locations/REGION/endpoints/ID)')
        return cls(match['project'], match['location'], match['id'])

    def __str__(self) -> str:
        return f'projects/{self.project}/locations/{self.location}/endpoints/{self.endpoint_id}'


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip('[]')).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ApiEndpoint:
    """Where the SDK sends requests, and how: ``transport`` 'grpc' or 'rest'; ``anonymous`` for loopback."""
    host: Optional[str]     # None: the SDK's regional default
    transport: str = 'grpc'
    anonymous: bool = False

    @classmethod
    def parse(cls, text: Optional[str]) -> 'ApiEndpoint':
        """'' or None: the default; ``http://LOOPBACK:PORT``; ``https://HOST[:PORT]``; ``HOST[:PORT]`` (gRPC)."""
        if not text:
            return cls(None)
        parsed = urllib.parse.urlsplit(text if '://' in text else f'grpc://{text}')
        if not parsed.hostname or parsed.path.strip('/') or parsed.query:
            raise ValueError(f'not a Vertex AI API endpoint: {text!r} (expected http://127.0.0.1:PORT for a local '
                             f'endpoint, https://HOST[:PORT], or HOST[:PORT])')
        if parsed.scheme == 'http':
            if not is_loopback(parsed.hostname):
                raise ValueError(f'plain HTTP is for a local endpoint only (127.0.0.1, ::1, localhost), '
                                 f'not {parsed.hostname!r}: use https://')
            return cls(f'http://{parsed.netloc}', 'rest', anonymous=True)
        if parsed.scheme == 'https':
            return cls(f'https://{parsed.netloc}', 'rest')
        if parsed.scheme == 'grpc':
            return cls(parsed.netloc)
        raise ValueError(f'unknown scheme {parsed.scheme!r} in Vertex AI API endpoint {text!r}')

    def configure_sdk(self, project: str, location: str) -> None:
        """Points this process's ``google.cloud.aiplatform`` at the endpoint (its configuration is global)."""
        from google.cloud import aiplatform
        from google.cloud.aiplatform import initializer

        if self.anonymous:
            from google.auth.credentials import AnonymousCredentials

            aiplatform.init(project=project, location=location, api_endpoint=self.host, api_transport='rest',
                            credentials=AnonymousCredentials())
            return
        config = initializer.global_config
        # init() ignores None, so an earlier local endpoint of this process is undone by hand.
        if config.api_endpoint is not None and self.host is None:
            config._api_endpoint = None
        if type(config._credentials).__name__ == 'AnonymousCredentials':
            config._credentials = None  # type: ignore[assignment]  # (the SDK then looks them up)
        aiplatform.init(project=project, location=location, api_endpoint=self.host, api_transport=self.transport)


def windows_per_request(window_samples: int, max_request_bytes: int = MAX_REQUEST_BYTES,
                        transport: str = 'grpc') -> int:
    """How many windows fit in one request under ``max_request_bytes``; raises if not even one does."""
    per_window = window_samples * BYTES_PER_SAMPLE[transport]
    fit = (max_request_bytes - ENVELOPE_BYTES) // per_window
    if fit < 1:
        raise RequestTooLarge(
            f'one window of {window_samples:,} samples is ~{per_window + ENVELOPE_BYTES:,} bytes as a {transport} '
            f'prediction request, over the endpoint\'s request size limit of {max_request_bytes:,} bytes '
            f'(Vertex AI public endpoints: {MAX_REQUEST_BYTES:,}): serve this model in the worker (no '
            f'--model_endpoint), on a private endpoint, or export it with shorter windows')
    return int(fit)


def to_instances(windows: np.ndarray) -> list[list[float]]:
    """``[n, window_samples]`` -> JSON rows for TF Serving's single-input ``instances`` format."""
    return np.round(np.asarray(windows, dtype=np.float64), SAMPLE_DECIMALS).tolist()


class RequestTooLarge(ValueError):
    """Not even one window fits in a request under the endpoint's size limit."""


class MalformedAnswer(ValueError):
    """The endpoint answered, but not with one prediction per instance."""


class WrongModel(ValueError):
    """The predictions have another number of labels than ``model_uri``'s model: a deployment mismatch."""


class RequestRefused(Exception):
    """One window the endpoint refuses (400) or answers malformed, asked twice: its file's fault."""


def parse_predictions(predictions: Sequence[Any], expected_rows: int, num_labels: int) -> np.ndarray:
    """TF Serving rows (lists, or ``{'probabilities': list}`` dicts) -> ``[rows, labels]`` float32."""
    if len(predictions) != expected_rows:
        raise MalformedAnswer(f'the endpoint returned {len(predictions)} predictions for {expected_rows} instances')
    try:
        rows = [p['probabilities'] if isinstance(p, dict) else p for p in predictions]
        scores = np.asarray(rows, dtype=np.float32)
    except (KeyError, TypeError, ValueError) as e:
        raise MalformedAnswer(f'the endpoint returned predictions that are not probability rows: {e}') from e
    if scores.ndim != 2 or scores.shape[0] != expected_rows:
        raise MalformedAnswer(f'the endpoint returned predictions of shape {scores.shape} for {expected_rows} '
                              f'instances')
    if scores.shape[1] != num_labels:
        raise WrongModel(f'the endpoint returned predictions of shape {scores.shape}, expected '
                         f'({expected_rows}, {num_labels}): is the deployed model the one in model_uri?')
    return scores


def is_transient(error: BaseException) -> bool:
    """429, 5xx, timeouts, refused or dropped connections: retried. Everything else is not."""
    from google.api_core import exceptions
    from google.auth.exceptions import TransportError

    return isinstance(error, (exceptions.TooManyRequests, exceptions.ServerError, exceptions.RetryError,
                              TransportError, ConnectionError, TimeoutError, OSError))


def is_refusal(error: BaseException) -> bool:
    """A 400 or a malformed answer: possibly one input's fault, so the request is narrowed down."""
    from google.api_core.exceptions import BadRequest

    return isinstance(error, (BadRequest, MalformedAnswer))


def chunks(count: int, size: int) -> Iterator[slice]:
    for start in range(0, count, size):
        yield slice(start, min(start + size, count))


@dataclass(frozen=True)
class EndpointClient:
    """What ``load_model`` returns: Beam's request handler and the endpoint it calls.

    Both travel together because RunInference may share one loaded "model" between
    DoFn instances whose handler copies never ran ``load_model`` themselves.
    """
    requests: Any   # VertexAIModelHandlerJSON (one try per call: the retries are this module's)
    endpoint: Any   # google.cloud.aiplatform.Endpoint


def _requests_handler(endpoint: EndpointName, private: bool, network: Optional[str], throttle_delay_secs: int):
    """Beam's handler with a timeout on each request; its constructor checks the endpoint has a model deployed."""
    from apache_beam.ml.inference import utils
    from apache_beam.ml.inference.vertex_ai_inference import VertexAIModelHandlerJSON

    class TimedRequests(VertexAIModelHandlerJSON):
        def request(self, batch, model, inference_args=None):
            if self.is_private:
                return super().request(batch, model, inference_args)
            prediction = model.predict(instances=list(batch), parameters=inference_args,
                                       timeout=REQUEST_TIMEOUT_SECONDS)
            return utils._convert_to_result(batch, prediction.predictions, prediction.deployed_model_id)

    return TimedRequests(endpoint_id=endpoint.endpoint_id, project=endpoint.project, location=endpoint.location,
                         private=private, network=network, num_retries=0, throttle_delay_secs=throttle_delay_secs)


class VertexEndpointHandler(WindowedClassifierHandler):
    """Scores windows on a Vertex AI endpoint."""

    runtime = 'vertex'

    def __init__(self, model_uri: str, *, endpoint: str, api_endpoint: Optional[str] = None, private: bool = False,
                 network: Optional[str] = None, retry_seconds: float = DEFAULT_RETRY_SECONDS,
                 initial_backoff_seconds: float = INITIAL_BACKOFF_SECONDS, throttle_delay_secs: int = 1,
                 max_request_bytes: int = MAX_REQUEST_BYTES, **kwargs):
        """``throttle_delay_secs``: the pause Beam's adaptive throttler takes when it holds a request back; 1 s,
        its history window (Beam's 5 s default outlasts the history it decided on)."""
        super().__init__(model_uri, **kwargs)
        self._endpoint = EndpointName.parse(endpoint)
        self._api = ApiEndpoint.parse(api_endpoint)
        self._private, self._network = private, network
        self._retry_seconds, self._initial_backoff = retry_seconds, initial_backoff_seconds
        self._throttle_delay = throttle_delay_secs
        self._windows_per_request = windows_per_request(self.metadata.window_samples, max_request_bytes,
                                                        self._api.transport)

    @property
    def endpoint(self) -> EndpointName:
        return self._endpoint

    @property
    def api_endpoint(self) -> ApiEndpoint:
        return self._api

    @property
    def windows_per_request(self) -> int:
        return self._windows_per_request

    def load_model(self) -> EndpointClient:
        self._api.configure_sdk(self._endpoint.project, self._endpoint.location)
        requests = self._call(lambda: _requests_handler(self._endpoint, self._private, self._network,
                                                        self._throttle_delay))
        return EndpointClient(requests, self._call(requests.create_client))

    def _call(self, fn: Callable[[], Any]) -> Any:
        """``fn()``, retried on transient failures for ``retry_seconds`` (exponential backoff, full jitter)."""
        started = time.monotonic()
        bound = self._initial_backoff
        while True:
            try:
                return fn()
            except Exception as e:   # classified: transient ones are retried, the rest raised at once
                # Beam's endpoint lookup wraps the client's error in a ValueError(message, id, error).
                cause = e.args[-1] if isinstance(e, ValueError) and e.args and isinstance(
                    e.args[-1], BaseException) else e
                left = self._retry_seconds - (time.monotonic() - started)
                if not is_transient(cause) or left <= 0:
                    raise
                wait = min(random.random() * bound, left)
                _LOGGER.warning('Vertex AI endpoint %s: %s; retrying in %.1f s', self._endpoint,
                                str(cause)[:300], wait)
                time.sleep(wait)
                bound = min(bound * 2, MAX_BACKOFF_SECONDS)

    def _predict(self, model: EndpointClient, windows: np.ndarray) -> np.ndarray:
        results = self._call(lambda: model.requests.run_inference(to_instances(windows), model.endpoint))
        return parse_predictions([r.inference for r in results], len(windows), len(self.metadata.labels))

    def _score_narrowing(self, model: EndpointClient, windows: np.ndarray) -> np.ndarray:
        """Scores one request's windows; on a refusal, each half on its own, down to the window at fault."""
        try:
            return self._predict(model, windows)
        except Exception as e:
            if not is_refusal(e):
                raise
            if len(windows) == 1:
                try:   # asked twice: a one-off malformed answer is the moment's, not the window's
                    return self._predict(model, windows)
                except Exception as again:
                    if is_refusal(again):
                        raise RequestRefused(f'{type(again).__name__}: {again}') from again
                    raise
        half = len(windows) // 2
        return np.concatenate([self._score_narrowing(model, windows[:half]),
                               self._score_narrowing(model, windows[half:])])

    def score_windows(self, model: EndpointClient, windows: np.ndarray) -> np.ndarray:
        scores = np.empty((len(windows), len(self.metadata.labels)), dtype=np.float32)
        for part in chunks(len(windows), self._windows_per_request):
            scores[part] = self._score_narrowing(model, windows[part])
        return scores

    def run_inference(self, batch: Sequence[np.ndarray], model: EndpointClient,
                      inference_args: Optional[dict[str, Any]] = None) -> list[FileScores]:
        """As the base class; a refused window's batch is bisected by file, so only its file gets the error."""
        try:
            return list(super().run_inference(batch, model, inference_args))
        except RequestRefused as refused:
            if len(batch) == 1:
                return [FileScores(example=None, inference=np.empty((0, len(self.metadata.labels)), np.float32),
                                   model_id=self.metadata.model_version, labels=self.metadata.labels,
                                   error=f'the Vertex AI endpoint {self._endpoint} refused this file: {refused}')]
        half = len(batch) // 2
        return self.run_inference(batch[:half], model) + self.run_inference(batch[half:], model)

    def share_model_across_processes(self) -> bool:
        return False
