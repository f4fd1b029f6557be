"""The local stack: Pub/Sub, Cloud Storage and BigQuery emulators, and a Vertex AI endpoint, as real processes.

    python -m stack start                 # the emulators, the bucket, topic, subscription, dataset and tables
    eval "$(python -m stack env)"         # their variables, for the pipeline and the client libraries
    python -m stack upload FILES_OR_DIRS  # upload + publish the Cloud Storage notifications
    python -m stack delete NAME           # delete + publish OBJECT_DELETE
    python -m stack pipeline start|stop   # the streaming pipeline against the stack, in the background
    python -m stack watch                 # rows as they arrive
    python -m stack demo DIR              # all of the above for one folder (`make run-streaming`)
    python -m stack status | stop

The pipeline runs against it unchanged: the same command line as on Dataflow,
with the emulator variables (PUBSUB_EMULATOR_HOST, STORAGE_EMULATOR_HOST,
BIGQUERY_EMULATOR_HOST) in the environment, plus GCE_METADATA_HOST/IP for the
metadata stand-in that ends credential lookup at once (``metadata_server.py``).

Modules: ``config`` (names, ports), ``emulators`` (LocalStack: start, provision,
restart, stop), ``processes`` (by pid, bounded waits), ``notifications`` and
``uploads`` (what Cloud Storage would publish), ``streaming`` (pipeline process,
row watcher); ``bqemulator_offline``, ``storage_emulator`` and
``metadata_server`` are the launchers, each with the emulator gap it closes; ``vertex_endpoint`` is the local
Vertex AI prediction endpoint (``--model_endpoint ... --vertex_api_endpoint http://127.0.0.1:PORT``).
"""
