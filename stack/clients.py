"""Client-library objects for the emulators, built from the emulator variables in the environment."""
from __future__ import annotations

import os

from google.auth.credentials import AnonymousCredentials

from cloud.emulators import ENV_VARS, PROJECT_ENV, PUBSUB, STORAGE
from stack.processes import StackError


def _require(service: str) -> str:
    value = os.environ.get(ENV_VARS[service])
    if not value:
        raise StackError(f'{ENV_VARS[service]} is not set: start the stack and export its variables '
                         '(`eval "$(python -m stack env)"`)')
    return value


def storage_client():
    """Anonymous: the emulator needs no credentials, and looking them up stalls without any."""
    from google.cloud import storage

    endpoint = _require(STORAGE)
    return storage.Client(project=os.environ.get(PROJECT_ENV, 'local-project'), credentials=AnonymousCredentials(),
                          client_options={'api_endpoint': endpoint})


def publisher_client():
    from google.cloud import pubsub_v1

    _require(PUBSUB)  # the library itself reads PUBSUB_EMULATOR_HOST
    return pubsub_v1.PublisherClient()
