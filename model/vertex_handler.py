"""RunInference on a Vertex AI endpoint serving the exported SavedModel.

Same windowing, batching and ``PredictionResult`` as the local handler (it
subclasses ``WindowedClassifierHandler``); only ``score_windows`` differs: the
windows go to the endpoint as JSON ``instances`` through Beam's
``VertexAIModelHandlerJSON``, so requests get its retries (exponential backoff
on 429 and 5xx) and its client-side adaptive throttling. ``model_uri`` still
supplies the metadata (labels, sample rate, window), so it must be the
directory that was deployed (``python -m model.vertex_deploy deploy``).

Public endpoints refuse requests over 1.5 MB, so a batch of windows is split
into requests that fit; samples are sent rounded to 5 decimals (finer than
16-bit audio's 3e-5 step), which keeps a one-second 16 kHz window near 150 kB.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from model.handlers import WindowedClassifierHandler

ENDPOINT_NAME = re.compile(r'^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/endpoints/(?P<id>[^/]+)$')
MAX_REQUEST_BYTES = 1_500_000   # Vertex AI public endpoints' request size limit
SAMPLE_DECIMALS = 5
# Worst case JSON characters per sample at SAMPLE_DECIMALS: '-0.12345, '.
BYTES_PER_SAMPLE = SAMPLE_DECIMALS + 5


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


def windows_per_request(window_samples: int, max_request_bytes: int = MAX_REQUEST_BYTES) -> int:
    """How many windows fit in one request, leaving 10% for the envelope."""
    return max(1, int(0.9 * max_request_bytes) // (window_samples * BYTES_PER_SAMPLE))


def to_instances(windows: np.ndarray) -> list[list[float]]:
    """``[n, window_samples]`` -> JSON rows for TF Serving's single-input ``instances`` format."""
    return np.round(np.asarray(windows, dtype=np.float64), SAMPLE_DECIMALS).tolist()


def parse_predictions(predictions: Sequence[Any], expected_rows: int, num_labels: int) -> np.ndarray:
    """TF Serving rows (lists, or ``{'probabilities': list}`` dicts) -> ``[rows, labels]`` float32."""
    rows = [p['probabilities'] if isinstance(p, dict) else p for p in predictions]
    scores = np.asarray(rows, dtype=np.float32)
    if scores.shape != (expected_rows, num_labels):
        raise ValueError(f'the endpoint returned predictions of shape {scores.shape}, expected '
                         f'({expected_rows}, {num_labels}): is the deployed model the one in model_uri?')
    return scores


def chunks(count: int, size: int) -> Iterator[slice]:
    for start in range(0, count, size):
        yield slice(start, min(start + size, count))


@dataclass(frozen=True)
class EndpointClient:
    """What ``load_model`` returns: Beam's request handler and the endpoint it calls.

    Both travel together because RunInference may share one loaded "model" between
    DoFn instances whose handler copies never ran ``load_model`` themselves.
    """
    requests: Any   # apache_beam.ml.inference.vertex_ai_inference.VertexAIModelHandlerJSON
    endpoint: Any   # google.cloud.aiplatform.Endpoint


class VertexEndpointHandler(WindowedClassifierHandler):
    """Scores windows on a Vertex AI endpoint."""

    runtime = 'vertex'

    def __init__(self, model_uri: str, *, endpoint: str, private: bool = False, network: Optional[str] = None,
                 num_retries: int = 5, throttle_delay_secs: int = 5, max_request_bytes: int = MAX_REQUEST_BYTES,
                 **kwargs):
        super().__init__(model_uri, **kwargs)
        self._endpoint = EndpointName.parse(endpoint)
        self._private, self._network = private, network
        self._retries: dict[str, Any] = {'num_retries': num_retries, 'throttle_delay_secs': throttle_delay_secs}
        self._windows_per_request = windows_per_request(self.metadata.window_samples, max_request_bytes)

    @property
    def endpoint(self) -> EndpointName:
        return self._endpoint

    def load_model(self) -> EndpointClient:
        from apache_beam.ml.inference.vertex_ai_inference import VertexAIModelHandlerJSON

        # Its constructor checks the endpoint is live and has a model deployed.
        requests = VertexAIModelHandlerJSON(
            endpoint_id=self._endpoint.endpoint_id, project=self._endpoint.project,
            location=self._endpoint.location, private=self._private, network=self._network, **self._retries)
        return EndpointClient(requests, requests.create_client())

    def score_windows(self, model: EndpointClient, windows: np.ndarray) -> np.ndarray:
        num_labels = len(self.metadata.labels)
        scores = np.empty((len(windows), num_labels), dtype=np.float32)
        for part in chunks(len(windows), self._windows_per_request):
            results = model.requests.run_inference(to_instances(windows[part]), model.endpoint)
            scores[part] = parse_predictions([r.inference for r in results], part.stop - part.start, num_labels)
        return scores

    def share_model_across_processes(self) -> bool:
        return False
