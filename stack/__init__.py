"""The local stack: Pub/Sub, Cloud Storage and BigQuery emulators, as real processes on this machine.

    python -m stack start      # start all three, create the bucket, topic, subscription and tables
    eval "$(python -m stack env)"
    python -m stack upload FILES_OR_DIR   # upload + publish the Cloud Storage notifications
    python -m stack status | watch | stop

The pipeline runs against it unchanged: the same command line as on Dataflow,
with the emulator variables (PUBSUB_EMULATOR_HOST, STORAGE_EMULATOR_HOST,
BIGQUERY_EMULATOR_HOST) in the environment.
"""
