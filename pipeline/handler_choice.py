"""Chooses the RunInference model handler from the options: one handler class per runtime (``model.handlers``)."""
from __future__ import annotations

from typing import Any

from model.handlers import WindowedClassifierHandler
from model.serving import local_handler
from pipeline.options import PipelineConfig


def make_handler(config: PipelineConfig, *, keep_model_loaded: bool = False) -> WindowedClassifierHandler:
    """A Vertex AI endpoint's handler with ``--model_endpoint``, else the in-worker runtime ``--inference_runtime``
    asks for (``model.serving.local_handler``). ``keep_model_loaded``: an in-worker model is loaded once per
    process and kept for later pipeline runs in it (watch mode)."""
    batching: dict[str, Any] = dict(
        min_batch_size=config.min_batch_size, max_batch_size=config.max_batch_size,
        max_batch_duration_secs=config.max_batch_duration_secs if config.streaming else None)
    if config.model_endpoint:
        from model.vertex_handler import VertexEndpointHandler  # only needed for remote inference

        return VertexEndpointHandler(config.model_uri, endpoint=config.model_endpoint, **batching)
    return local_handler(config.model_uri, runtime=config.inference_runtime, model_copies=config.model_copies,
                         share_model_across_processes=config.share_model_across_processes,
                         keep_model_loaded=keep_model_loaded, **batching)
