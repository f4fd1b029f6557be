"""The "retry failed files" action: put the selected error rows' files back in the pipeline's queue.

An error row marked ``retryable`` records a bad moment (an outage, a lock, a full
disk), not a bad file. Where the store can forget it (the SQLite default) the row is removed, so the
file has no row again: a watch-mode pipeline (``make ui``) picks it up within
seconds, and any batch run over the input would too. A file is only re-queued if it
is still there at the version that failed; otherwise its row stays, as the record
of what happened. Permanent errors are about the file itself and are not retried
from here (after a decoder upgrade: a batch replay with ``--retry_failed``). In
BigQuery rows are not deleted (the ``<table>_latest`` view prefers the newest row),
so the page shows the replay command instead.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from app.media import local_path
from results.store import open_results


@dataclass
class RetryOutcome:
    requeued: list[str] = field(default_factory=list)
    permanent: list[str] = field(default_factory=list)   # the file is bad: not retried
    gone: list[str] = field(default_factory=list)        # deleted or replaced since it failed
    command: str = ''                                    # BigQuery: what to run instead

    @property
    def message(self) -> str:
        parts = []
        if self.requeued:
            parts.append(f'{len(self.requeued)} file{"s" if len(self.requeued) != 1 else ""} back in the queue: '
                         'each is pending until the pipeline has processed it again.')
        if self.permanent:
            parts.append(f'{len(self.permanent)} not retried: the error is about the file itself (a retry would '
                         'fail the same way).')
        if self.gone:
            parts.append(f'{len(self.gone)} not retried: deleted or replaced since it failed (a new version is '
                         'processed on its own).')
        if self.command:
            parts.append(f'BigQuery rows are not deleted from the page; to retry, run a batch replay: {self.command}')
        return ' '.join(parts) or 'Nothing selected.'


def still_there(audio_file: str, generation: str) -> bool:
    """Whether the file exists at the version that failed (local: modification time in ns; gs://: generation)."""
    if audio_file.startswith('gs://'):
        from cloud.objects import gcs_generation

        return gcs_generation(audio_file) == str(generation)
    try:
        return str(os.stat(local_path(audio_file)).st_mtime_ns) == str(generation)
    except OSError:
        return False


def requeue(results: str, error_rows: list[dict], input_location: str | None = None) -> RetryOutcome:
    """Re-queues the retryable ones among ``error_rows`` (each with audio_file, generation, retryable)."""
    outcome = RetryOutcome()
    retryable = []
    for row in error_rows:
        if not row.get('retryable'):
            outcome.permanent.append(row['audio_file'])
        elif not still_there(row['audio_file'], row['generation']):
            outcome.gone.append(row['audio_file'])
        else:
            retryable.append(row)
    if not retryable:
        return outcome
    store = open_results(results)
    if not store.forgets_errors:
        pattern = (input_location.rstrip('/') + '/**') if input_location else 'gs://BUCKET/PREFIX/**'
        outcome.command = (f"python -m pipeline.main --input_pattern '{pattern}' --output_table {results} "
                           '--spectrogram_location ... (a replay retries retryable errors by default)')
        return outcome
    for row in retryable:
        forgotten = store.forget_retryable_error(row['audio_file'], str(row['generation']))
        (outcome.requeued if forgotten else outcome.permanent).append(row['audio_file'])
    return outcome
