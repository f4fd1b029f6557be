"""Names and ports of the local stack: what ``stack start`` creates and the pipeline is pointed at."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from cloud.emulators import BIGQUERY, PUBSUB, STORAGE
from results.tables import default_error_table

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_STATE_DIR = os.path.join(REPO_ROOT, '.stack')

METADATA = 'metadata'
VERTEX = 'vertex'
EMULATORS = (PUBSUB, STORAGE, BIGQUERY)
# The metadata stand-in only ends credential lookup at once (see stack/metadata_server.py); the local Vertex AI
# endpoint serves --model_endpoint (stack/vertex_endpoint.py).
SERVICES = EMULATORS + (METADATA, VERTEX)
METADATA_ENV_VARS = ('GCE_METADATA_HOST', 'GCE_METADATA_IP')


@dataclass(frozen=True)
class StackConfig:
    project: str = 'local-project'
    upload_bucket: str = 'audio-uploads'
    output_bucket: str = 'audio-results'      # spectrograms (never re-ingested: a different bucket)
    topic: str = 'audio-uploads'              # where "Cloud Storage" announces new objects
    subscription: str = 'audio-pipeline'      # what the pipeline reads
    dataset: str = 'audio'
    table: str = 'processed'
    # Fixed ports for `make stack` (a person can remember them); 0 = any free port (tests).
    pubsub_port: int = 8085
    storage_port: int = 9023
    bigquery_port: int = 9050
    bigquery_grpc_port: int = 9060
    metadata_port: int = 9070
    vertex_port: int = 9080
    vertex_location: str = 'us-central1'

    @property
    def topic_path(self) -> str:
        return f'projects/{self.project}/topics/{self.topic}'

    @property
    def subscription_path(self) -> str:
        return f'projects/{self.project}/subscriptions/{self.subscription}'

    @property
    def output_table(self) -> str:
        return f'{self.project}:{self.dataset}.{self.table}'

    @property
    def error_table(self) -> str:
        return default_error_table(self.output_table)

    @property
    def spectrogram_location(self) -> str:
        return f'gs://{self.output_bucket}/spectrograms'

    @property
    def upload_pattern(self) -> str:
        """Every object of the upload bucket: what the notifications announce."""
        return f'gs://{self.upload_bucket}/**'

    @property
    def vertex_endpoint(self) -> str:
        """The endpoint ``stack start`` serves the demo model on (``--model_endpoint``)."""
        return f'projects/{self.project}/locations/{self.vertex_location}/endpoints/1'

    def pipeline_args(self) -> list[str]:
        """The streaming pipeline's arguments against this stack: the Dataflow command line, plus --reconcile.

        The local runner acknowledges a notification when it pulls it, so a pipeline killed mid-drain loses
        the ones it held; each start therefore first processes every upload without a row (then streams).
        """
        return ['--input_subscription', self.subscription_path, '--output_table', self.output_table,
                '--spectrogram_location', self.spectrogram_location,
                '--reconcile', '--input_pattern', self.upload_pattern]

    def with_free_ports(self) -> 'StackConfig':
        return dataclasses.replace(self, pubsub_port=0, storage_port=0, bigquery_port=0, bigquery_grpc_port=0,
                                   metadata_port=0, vertex_port=0)
