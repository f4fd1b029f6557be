"""Chooses the RunInference model handler from the options: one handler class per runtime (``model.handlers``)."""
from __future__ import annotations

from typing import Any, Optional

from model.handlers import WindowedClassifierHandler
from model.metadata import SAVEDMODEL_RUNTIME, ModelMetadata, load_metadata
from model.serving import local_handler
from pipeline.options import OptionsError, PipelineConfig


def run_metadata(config: PipelineConfig) -> ModelMetadata:
    """The model's metadata with this run's windowing: ``--window_overlap_seconds`` moves the hop."""
    metadata = load_metadata(config.model_uri)
    if config.window_overlap_seconds is None:
        return metadata
    window = metadata.window_samples
    hop = window - round(config.window_overlap_seconds * metadata.sample_rate_hz)
    if not 0 < hop <= window:
        raise OptionsError(f'--window_overlap_seconds must be at least 0 and less than the model\'s window '
                           f'({window / metadata.sample_rate_hz:g} s), got {config.window_overlap_seconds:g}')
    return metadata.with_hop(hop)


def make_handler(config: PipelineConfig, *, keep_model_loaded: bool = False,
                 scoring_threads: Optional[int] = None) -> WindowedClassifierHandler:
    """A Vertex AI endpoint's handler with ``--model_endpoint``, else the in-worker runtime the model and
    ``--inference_runtime`` ask for (``model.serving.local_handler``). ``keep_model_loaded``: an in-worker model
    is loaded once per process and kept for later pipeline runs in it (watch mode). ``scoring_threads``: the
    threads of a worker process that score windows at once (``pipeline.local_runner.scoring_threads``)."""
    batching: dict[str, Any] = dict(
        min_batch_size=config.min_batch_size, max_batch_size=config.max_batch_size,
        max_batch_duration_secs=config.max_batch_duration_secs if config.streaming else None,
        metadata=run_metadata(config))
    if config.model_endpoint:
        if batching['metadata'].runtime != SAVEDMODEL_RUNTIME:
            raise OptionsError(f'--model_endpoint serves SavedModels (Vertex AI\'s TensorFlow container); model '
                               f'{batching["metadata"].model_version!r} is {batching["metadata"].runtime}: '
                               f'run it in the workers (leave out --model_endpoint)')
        from model.vertex_handler import VertexEndpointHandler  # only needed for remote inference

        from model.vertex_handler import RequestTooLarge

        try:
            # One retry budget for every stage: a Vertex AI outage that outlasts it gives retryable error rows.
            return VertexEndpointHandler(config.model_uri, endpoint=config.model_endpoint,
                                         api_endpoint=config.vertex_api_endpoint,
                                         retry_seconds=config.transient_retry_seconds, **batching)
        except RequestTooLarge as e:
            raise OptionsError(f'--model_endpoint: {e}') from e
    try:
        return local_handler(config.model_uri, runtime=config.inference_runtime, model_copies=config.model_copies,
                             share_model_across_processes=config.share_model_across_processes,
                             keep_model_loaded=keep_model_loaded, scoring_threads=scoring_threads, **batching)
    except ValueError as e:   # a runtime the model cannot run on
        raise OptionsError(f'--inference_runtime={config.inference_runtime}: {e}') from e
