"""results.export: rows written here, exported, and the files read back as Raven, BirdNET and Audacity read them."""
from __future__ import annotations

import csv
import os

import pytest

from results import export, sqlite_store
from results.store import open_store

BIRD = 'Turdus merula_Eurasian Blackbird'
WREN = 'Troglodytes troglodytes_Eurasian Wren'


def result(uri, gen='1', events=(), processed_at='2026-12-05T03:00:00.000000Z', rate=48000, event_count=True):
    row = {'audio_file': uri, 'generation': gen, 'spectrogram_image': None, 'label': BIRD, 'confidence': 0.9,
           'scores': [], 'model_version': 'birdnet', 'event_count': len(events) if event_count else None,
           'duration_seconds': 9.0, 'sample_rate_hz': rate, 'channels': 1, 'event_time': None,
           'processed_at': processed_at}
    if event_count:
        row['_events'] = [{'audio_file': uri, 'generation': gen, 'start_seconds': s, 'end_seconds': e, 'label': label,
                           'confidence': c, 'model_version': 'birdnet', 'processed_at': processed_at}
                          for s, e, label, c in events]
    return row


def write(path, rows):
    with sqlite_store.connect(path) as conn:
        sqlite_store.write_processed(conn, rows)


def read_tsv(path):
    with open(path, encoding='utf-8', newline='') as f:
        return list(csv.DictReader(f, delimiter='\t'))


@pytest.fixture
def results(tmp_path):
    path = str(tmp_path / 'results.db')
    write(path, [
        # Two species in the same window (a multi-label model), one of them again later.
        result('/rec/site1/a.wav', events=[(3.0, 6.0, WREN, 0.4), (0.0, 3.0, BIRD, 0.81234), (3.0, 6.0, BIRD, 0.7)]),
        result('/rec/site2/b.flac', rate=16000, events=[(1.5, 4.5, 'chirp', 0.5)]),
        result('/rec/site2/quiet.wav'),                                      # nothing heard
        result('/rec/site2/no-events.wav', event_count=False),               # --events=false
    ])
    return path


def test_raven_selection_table_has_birdnet_analyzers_columns_and_rows(results, tmp_path):
    out = tmp_path / 'out'
    summary = export.export(open_store(results), str(out), ['raven'])
    assert (summary.files, summary.detections, summary.written, summary.skipped) == (3, 4, 3, 1)
    table = out / 'site1' / 'a.BirdNET.selection.table.txt'
    header = table.read_text().splitlines()[0]
    assert header.split('\t') == ['Selection', 'View', 'Channel', 'Begin Time (s)', 'End Time (s)', 'Low Freq (Hz)',
                                  'High Freq (Hz)', 'Common Name', 'Species Code', 'Confidence', 'Begin Path',
                                  'File Offset (s)']
    rows = read_tsv(table)
    assert [(r['Selection'], r['Begin Time (s)'], r['End Time (s)'], r['Common Name'], r['Confidence'])
            for r in rows] == [('1', '0.0', '3.0', 'Eurasian Blackbird', '0.8123'),
                               ('2', '3.0', '6.0', 'Eurasian Blackbird', '0.7000'),  # most confident first
                               ('3', '3.0', '6.0', 'Eurasian Wren', '0.4000')]
    assert {(r['View'], r['Channel'], r['Low Freq (Hz)'], r['High Freq (Hz)'], r['Begin Path']) for r in rows} == {
        ('Spectrogram 1', '1', '0', '15000', '/rec/site1/a.wav')}
    assert [r['Species Code'] for r in rows] == [BIRD, BIRD, WREN]
    assert [r['File Offset (s)'] for r in rows] == ['0.0', '3.0', '3.0']
    # A 16 kHz file: the box stops at its Nyquist frequency; a label without "_" is its own common name.
    (chirp,) = read_tsv(out / 'site2' / 'b.BirdNET.selection.table.txt')
    assert (chirp['High Freq (Hz)'], chirp['Common Name'], chirp['Begin Time (s)']) == ('8000.0', 'chirp', '1.5')
    # Nothing heard: BirdNET-Analyzer's one "nocall" row, so that combined tables keep the file.
    (nocall,) = read_tsv(out / 'site2' / 'quiet.BirdNET.selection.table.txt')
    assert (nocall['Common Name'], nocall['Species Code'], nocall['Begin Path']) == ('nocall', 'nocall',
                                                                                      '/rec/site2/quiet.wav')
    assert not (out / 'site2' / 'no-events.BirdNET.selection.table.txt').exists()


def test_birdnet_csv_and_audacity_labels(results, tmp_path):
    out = tmp_path / 'out'
    export.main(['--results', results, '--out', str(out), '--format', 'csv,audacity'])
    with open(out / 'site1' / 'a.BirdNET.results.csv', encoding='utf-8', newline='') as f:
        rows = list(csv.reader(f))
    assert rows == [['Start (s)', 'End (s)', 'Scientific name', 'Common name', 'Confidence', 'File'],
                    ['0.0', '3.0', 'Turdus merula', 'Eurasian Blackbird', '0.8123', '/rec/site1/a.wav'],
                    ['3.0', '6.0', 'Turdus merula', 'Eurasian Blackbird', '0.7000', '/rec/site1/a.wav'],
                    ['3.0', '6.0', 'Troglodytes troglodytes', 'Eurasian Wren', '0.4000', '/rec/site1/a.wav']]
    with open(out / 'site2' / 'quiet.BirdNET.results.csv', encoding='utf-8') as f:
        assert f.read().splitlines() == ['Start (s),End (s),Scientific name,Common name,Confidence,File']
    labels = [line.split('\t') for line in (out / 'site1' / 'a.BirdNET.results.txt').read_text().splitlines()]
    assert labels[0] == ['0.0', '3.0', 'Turdus merula, Eurasian Blackbird', '0.8123']
    assert len(labels) == 3
    assert not (out / 'site1' / 'a.BirdNET.selection.table.txt').exists()  # only the formats asked for


def test_min_confidence_and_names_with_commas(tmp_path):
    path = str(tmp_path / 'r.db')
    odd = 'Genus species_Bird, "the odd one"'
    write(path, [result('/x/odd, name.wav', events=[(0.0, 3.0, odd, 0.3), (3.0, 6.0, BIRD, 0.2)])])
    out = tmp_path / 'out'
    export.export(open_store(path), str(out), ['csv'], min_confidence=0.25)
    with open(out / 'odd, name.BirdNET.results.csv', encoding='utf-8', newline='') as f:
        rows = list(csv.reader(f))
    assert rows[1:] == [['0.0', '3.0', 'Genus species', 'Bird, "the odd one"', '0.3000', '/x/odd, name.wav']]


def test_only_the_newest_result_of_a_file_and_its_own_events(tmp_path):
    path = str(tmp_path / 'r.db')
    write(path, [result('gs://bucket/a.wav', gen='1', events=[(0.0, 3.0, WREN, 0.9)],
                        processed_at='2026-12-05T01:00:00.000000Z'),
                 result('gs://bucket/a.wav', gen='2', events=[(0.0, 3.0, BIRD, 0.6)],
                        processed_at='2026-12-05T02:00:00.000000Z')])
    items = list(export.read_detections(open_store(path)))
    assert [(i.generation, [d.label for d in i.detections]) for i in items] == [('2', [BIRD])]


def test_relative_names_keep_folders_below_the_shared_one():
    assert export.relative_names(['/r/a/x.wav', '/r/b/x.wav']) == {'/r/a/x.wav': 'a/x', '/r/b/x.wav': 'b/x'}
    assert export.relative_names(['gs://b/in/x.wav']) == {'gs://b/in/x.wav': 'x'}
    assert export.relative_names(['gs://b1/x.wav', 'gs://b2/y.wav']) == {'gs://b1/x.wav': 'b1/x',
                                                                         'gs://b2/y.wav': 'b2/y'}
    assert export.relative_names(['x.wav', 'd/y.mp3']) == {'x.wav': 'x', 'd/y.mp3': 'd/y'}


def test_command_line_refuses_unknown_formats_and_missing_results(tmp_path, capsys):
    with pytest.raises(SystemExit):
        export.main(['--results', 'r.db', '--out', str(tmp_path), '--format', 'raven,kaleidoscope'])
    assert 'kaleidoscope' in capsys.readouterr().err
    assert export.main(['--results', str(tmp_path / 'missing.db'), '--out', str(tmp_path)]) == 1
    assert not os.path.exists(tmp_path / 'missing.db')


@pytest.mark.e2e
def test_bigquery_results_export_the_same_files(bigquery_emulator, results, tmp_path):
    from cloud import emulators
    from results import bigquery_store

    table = 'local-project:audio.results'
    ids = bigquery_store.ensure_tables(table)
    client = emulators.beam_test_client()
    rows = sqlite_store.read_table(results, 'processed')
    events = sqlite_store.read_table(results, 'events')
    assert client.insert_rows_json(ids[0], rows) == []
    # The events twice: a streaming insert is at-least-once.
    assert client.insert_rows_json('local-project.audio.results_events', events + events) == []
    from_sqlite, from_bigquery = tmp_path / 'sqlite', tmp_path / 'bigquery'
    export.export(open_store(results), str(from_sqlite), list(export.FORMATS))
    export.main(['--results', table, '--out', str(from_bigquery), '--format', ','.join(export.FORMATS)])
    files = sorted(p.relative_to(from_sqlite) for p in from_sqlite.rglob('*') if p.is_file())
    assert files == sorted(p.relative_to(from_bigquery) for p in from_bigquery.rglob('*') if p.is_file())
    for name in files:
        assert (from_bigquery / name).read_text() == (from_sqlite / name).read_text(), name
