import json
import subprocess
import sys

from audio.records import AudioInfo, AudioObject, Classification, FailedAudio, ProcessedAudio
from results import schema


def test_processed_row_has_exactly_the_schema_columns():
    item = ProcessedAudio(AudioObject(uri='gs://b/a.wav', name='a.wav', generation='5', event_time=1.5e9),
                          AudioInfo(44100, 2, 3.25), 'gs://b/s/a.png')
    result = Classification('tone', 0.8, (('tone', 0.8), ('hum', 0.2)), 'v3', 6)
    row = schema.processed_row(item, result, processed_at=1.7e9)
    assert list(row) == [f['name'] for f in schema.PROCESSED_FIELDS]
    assert row['scores'] == [{'label': 'tone', 'score': 0.8}, {'label': 'hum', 'score': 0.2}]
    assert row['event_time'] == '2017-07-14T02:40:00.000000Z'
    assert (row['sample_rate_hz'], row['channels'], row['duration_seconds']) == (44100, 2, 3.25)


def test_error_row_truncates_long_messages():
    failure = FailedAudio(AudioObject(uri='x', name='x'), 'decode', 'NotAudio', 'y' * 5000)
    row = schema.error_row(failure, failed_at=0)
    assert list(row) == [f['name'] for f in schema.ERROR_FIELDS]
    assert len(row['message']) == schema.MAX_MESSAGE_CHARS and row['message'].endswith('...')


def test_cli_prints_the_bigquery_schema():
    out = subprocess.run([sys.executable, '-m', 'results.schema', 'processed'], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == schema.PROCESSED_FIELDS
