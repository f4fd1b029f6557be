"""The CSV export: the page's column names, the event count, one column per label's score; a name per view."""
import csv
import datetime as dt
import io

from app.export import csv_bytes, file_name
from app.urlstate import ViewState


def row(name, label, scores, event_count):
    return {'processed_at': dt.datetime(2026, 3, 2, 8, 0, 5, tzinfo=dt.timezone.utc), 'audio_file': f'/in/{name}',
            'generation': '1', 'label': label, 'confidence': max(scores.values()),
            'scores': [{'label': k, 'score': v} for k, v in scores.items()], 'event_count': event_count,
            'duration_seconds': 2.5, 'sample_rate_hz': 16000, 'channels': 1, 'model_version': 'demo',
            'event_time': dt.datetime(2026, 3, 2, 8, 0, 1, tzinfo=dt.timezone.utc), 'seen_at': None,
            'spectrogram_image': f'/out/{name}.png'}


def test_rows_carry_events_and_every_labels_score_under_the_pages_names():
    rows = [row('a.wav', 'hum', {'hum': 0.75, 'tone': 0.25}, 3), row('b.wav', 'chirp', {'chirp': 0.9}, None)]
    out = list(csv.DictReader(io.StringIO(csv_bytes(rows).decode('utf-8'))))
    assert out[0]['Uploaded (UTC)'] == '2026-03-02T08:00:01+00:00'
    assert out[0]['Processed (UTC)'] == '2026-03-02T08:00:05+00:00'
    assert (out[0]['Events'], out[1]['Events']) == ('3', '')
    assert (out[0]['Score: hum'], out[0]['Score: tone'], out[0]['Score: chirp']) == ('0.75', '0.25', '')
    assert out[1]['Score: chirp'] == '0.9' and out[1]['Audio file'] == '/in/b.wav'
    assert 'event_time' not in out[0] and 'First seen (UTC)' in out[0]


def test_the_file_name_says_what_was_filtered():
    assert file_name(ViewState()) == 'audio-results.csv'
    view = ViewState(labels=('hum', 'tone'), name='park/day 1', time_range='Last 24 hours',
                     confidence=(0.5, 1.0), event_label='chirp', page=3, inspect=('a', '1'))
    assert file_name(view) == ('audio-results-label-hum-label-tone-conf-0.50-1.00-time-24h-name-park_day_1-'
                               'event-chirp.csv')
    dates = ViewState(time_range='Between dates', dates=(dt.date(2026, 3, 1), dt.date(2026, 3, 2)))
    assert file_name(dates) == 'audio-results-time-dates-from-2026-03-01-to-2026-03-02.csv'
