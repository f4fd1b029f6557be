"""Detections in the files bioacoustics tools open: Raven Pro selection tables, BirdNET's CSV, Audacity labels.

    python -m results.export --results demo/output/results.db --out exports/
    python -m results.export --results my-project:audio.results --out exports/ --format raven,csv,audacity
    python -m results.export --results demo/output/results.db --out reviewed/ --format clips

``clips`` is of another kind: not the detections per audio file but the reviewed ones (the dashboard's Review
page), one WAV each in the folder-per-class layout ``python -m model.train --data`` reads (``results.clips``:
correct ones under their label, wrong ones under ``background`` or ``--wrong_folder``).

One file per audio file and format, named and laid out as BirdNET-Analyzer names its own
(``<name>.BirdNET.selection.table.txt``, ``<name>.BirdNET.results.csv``, ``<name>.BirdNET.results.txt``), under
``--out``, in the audio files' folders relative to the folder they all share (a ``gs://`` object: its bucket and
path). The columns and number formats are BirdNET-Analyzer's (``analyze/utils.py``), so a script or a Raven Pro
workspace made for BirdNET's output reads these unchanged:

- Raven: ``Selection, View, Channel, Begin Time (s), End Time (s), Low Freq (Hz), High Freq (Hz), Common Name,
  Species Code, Confidence, Begin Path, File Offset (s)``, tab-separated. The frequency band is the model's
  (0 to 15 kHz, at most half the file's sample rate); the species code is the label itself (BirdNET-Analyzer
  falls back to it too when it has no eBird code). A file without detections gets one ``nocall`` row, as
  BirdNET-Analyzer writes, so that tables combined over files keep every file's place.
- CSV: ``Start (s),End (s),Scientific name,Common name,Confidence,File``.
- Audacity: ``start<TAB>end<TAB>Scientific name, Common name<TAB>confidence``, no header.

Read through the result store (``results.store``): per audio file, its newest result row and the events written
with it (a file's older generations and ``--reprocess`` runs are left out); error rows have no detections and are
not exported. A result row whose
events were not computed (``event_count`` NULL) gets no files, and the summary says how many there were.
A label is split into its scientific and common name at its first ``_`` (BirdNET's labels, as BirdNET-Analyzer
splits them); ``--label_separator ''`` keeps labels whole (a model whose labels are plain names).
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import posixpath
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from results import clips
from results.store import ResultStore, ResultsUnavailable, open_results

# BirdNET's band (BirdNET-Analyzer's SIG_FMIN / SIG_FMAX): the selection box Raven draws.
LOW_FREQ_HZ = 0
HIGH_FREQ_HZ = 15000
RAVEN_COLUMNS = ('Selection', 'View', 'Channel', 'Begin Time (s)', 'End Time (s)', 'Low Freq (Hz)',
                 'High Freq (Hz)', 'Common Name', 'Species Code', 'Confidence', 'Begin Path', 'File Offset (s)')
CSV_COLUMNS = ('Start (s)', 'End (s)', 'Scientific name', 'Common name', 'Confidence', 'File')
NOCALL = 'nocall'
# How BirdNET's labels pack their two names (``Turdus merula_Eurasian Blackbird``).
BIRDNET_SEPARATOR = '_'


@dataclass(frozen=True)
class Detection:
    start_seconds: float
    end_seconds: float
    label: str
    confidence: float
    scientific_name: str
    common_name: str


@dataclass(frozen=True)
class FileDetections:
    """One audio file's newest result and its detections, in time order (then most confident first)."""
    audio_file: str
    generation: str
    sample_rate_hz: Optional[int]
    duration_seconds: Optional[float]
    detections: tuple[Detection, ...]


def species_names(label: str, separator: str = BIRDNET_SEPARATOR) -> tuple[str, str]:
    """(scientific name, common name) of a label: BirdNET's ``Scientific_Common`` split at its first ``_``, as
    BirdNET-Analyzer splits it. A label without the separator, or any label when ``separator`` is empty (a
    model whose labels are plain names, such as the demo model's ``noise_burst``), is both names.
    """
    scientific, _, common = label.partition(separator) if separator else (label, '', '')
    return scientific, common or scientific


def seconds_text(value: float) -> str:
    """A time as BirdNET-Analyzer writes one (``str`` of a rounded float: ``3.0``, ``1.5``)."""
    return str(round(float(value), 3))


def high_freq(sample_rate_hz: Optional[int]) -> float | int:
    """The top of Raven's selection box: BirdNET's band, cut at half the file's sample rate."""
    if sample_rate_hz and sample_rate_hz / 2 < HIGH_FREQ_HZ:
        return sample_rate_hz / 2
    return HIGH_FREQ_HZ


def raven_table(item: FileDetections) -> str:
    top = high_freq(item.sample_rate_hz)
    lines = ['\t'.join(RAVEN_COLUMNS)]
    for i, d in enumerate(item.detections, start=1):
        start, end = seconds_text(d.start_seconds), seconds_text(d.end_seconds)
        lines.append('\t'.join((str(i), 'Spectrogram 1', '1', start, end, str(LOW_FREQ_HZ), str(top), d.common_name,
                                d.label, f'{d.confidence:.4f}', item.audio_file, start)))
    if not item.detections:
        lines.append('\t'.join(('1', 'Spectrogram 1', '1', '0', '3', str(LOW_FREQ_HZ), str(top), NOCALL, NOCALL,
                                '1.0', item.audio_file, '0')))
    return '\n'.join(lines) + '\n'


def birdnet_csv(item: FileDetections) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow(CSV_COLUMNS)
    for d in item.detections:
        writer.writerow((seconds_text(d.start_seconds), seconds_text(d.end_seconds), d.scientific_name, d.common_name,
                         f'{d.confidence:.4f}', item.audio_file))
    return out.getvalue()


def audacity_labels(item: FileDetections) -> str:
    return ''.join(f'{seconds_text(d.start_seconds)}\t{seconds_text(d.end_seconds)}\t'
                   f'{d.scientific_name}, {d.common_name}\t{d.confidence:.4f}\n' for d in item.detections)


@dataclass(frozen=True)
class Format:
    """One export format: what it writes for one audio file, given the output path without its suffix.

    A format that writes several files per audio file (clips of reviewed detections, say) is one more entry
    with its own ``write``; the reading, naming and command line stay as they are.
    """
    name: str
    help: str
    write: Callable[[FileDetections, str], list[str]]


def text_format(name: str, help: str, suffix: str, render: Callable[[FileDetections], str]) -> Format:
    def write(item: FileDetections, base: str) -> list[str]:
        path = base + suffix
        os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
        with open(path, 'w', encoding='utf-8', newline='') as f:
            f.write(render(item))
        return [path]
    return Format(name, help, write)


FORMATS = {f.name: f for f in (
    text_format('raven', 'Raven Pro selection table (BirdNET-Analyzer\'s columns)', '.BirdNET.selection.table.txt',
                raven_table),
    text_format('csv', 'BirdNET-Analyzer\'s CSV', '.BirdNET.results.csv', birdnet_csv),
    text_format('audacity', 'Audacity label track', '.BirdNET.results.txt', audacity_labels),
)}
DEFAULT_FORMATS = ('raven', 'csv')
# The reviewed detections as training clips (results.clips): one WAV per review, not one file per audio file.
CLIPS = 'clips'


# ---- reading ----------------------------------------------------------------------------------------------

# The newest result row per audio file, in one form SQLite and BigQuery both run.
FILES_SQL = ('SELECT audio_file, generation, processed_at, sample_rate_hz, duration_seconds, event_count FROM '
             '(SELECT audio_file, generation, processed_at, sample_rate_hz, duration_seconds, event_count, '
             'ROW_NUMBER() OVER (PARTITION BY audio_file ORDER BY processed_at DESC, generation DESC) AS newest '
             'FROM {processed}) AS files WHERE newest = 1 ORDER BY audio_file')
# Files whose events one query reads: few enough for one IN list, many enough that a BigQuery export of a
# large backlog is a few hundred queries, not one per file.
FILES_PER_QUERY = 500


def _events_sql(count: int, param: Callable[[str], str]) -> str:
    """The events of ``count`` audio files (every generation and run: the caller keeps the newest result's own).

    DISTINCT drops the duplicates an at-least-once streaming insert can leave in BigQuery.
    """
    files = ', '.join(param(f'f{i}') for i in range(count))
    return ('SELECT DISTINCT audio_file, generation, processed_at, start_seconds, end_seconds, label, confidence '
            f'FROM {{events}} WHERE audio_file IN ({files}) '
            'ORDER BY audio_file, start_seconds, confidence DESC, label')


def _param(store: ResultStore) -> Callable[[str], str]:
    return (lambda name: f'@{name}') if store.dialect == 'bigquery' else (lambda name: f':{name}')


def read_detections(store: ResultStore, min_confidence: float = 0.0, skipped: Optional[list[str]] = None,
                    separator: str = BIRDNET_SEPARATOR) -> Iterator[FileDetections]:
    """Every audio file's newest result with its detections (confidence at least ``min_confidence``), in the
    order of their names.

    The file list is read at once (a row per file); their events ``FILES_PER_QUERY`` files at a time. Files whose
    events were not computed are left out (their names appended to ``skipped``).
    """
    files = store.query(FILES_SQL, {})
    for first in range(0, len(files), FILES_PER_QUERY):
        chunk = files[first:first + FILES_PER_QUERY]
        events: dict[str, list[dict[str, Any]]] = {}
        params = {f'f{i}': row['audio_file'] for i, row in enumerate(chunk)}
        for event in store.query(_events_sql(len(chunk), _param(store)), params):
            events.setdefault(event['audio_file'], []).append(event)
        for row in chunk:
            if row['event_count'] is None:
                if skipped is not None:
                    skipped.append(row['audio_file'])
                continue
            own = [e for e in events.get(row['audio_file'], [])   # the newest result's own run
                   if e['generation'] == row['generation'] and e['processed_at'] == row['processed_at']
                   and e['confidence'] >= min_confidence]
            yield FileDetections(row['audio_file'], row['generation'], row['sample_rate_hz'],
                                 row['duration_seconds'],
                                 tuple(Detection(float(e['start_seconds']), float(e['end_seconds']), e['label'],
                                                 float(e['confidence']), *species_names(e['label'], separator))
                                       for e in own))


# ---- naming and writing --------------------------------------------------------------------------------------

def _without_scheme(uri: str) -> str:
    for scheme in ('gs://', 'file://'):
        if uri.startswith(scheme):
            return uri[len(scheme):]
    return uri


def relative_names(audio_files: Sequence[str]) -> dict[str, str]:
    """Each file's path below the folder all of them share, without its extension (BirdNET-Analyzer's naming:
    the path below its input folder). A ``gs://`` object keeps its bucket when files span buckets."""
    paths = {f: posixpath.normpath(_without_scheme(f).replace(os.sep, '/')) for f in audio_files}
    folders = [posixpath.dirname(p) for p in paths.values()]
    root = posixpath.commonpath(folders) if folders and len({p.startswith('/') for p in folders}) == 1 else ''
    names = {}
    for f, p in paths.items():
        rel = posixpath.relpath(p, root) if root else p.lstrip('/')
        names[f] = posixpath.splitext(rel)[0]
    return names


@dataclass
class Summary:
    files: int = 0
    detections: int = 0
    written: int = 0
    skipped: int = 0


def export(store: ResultStore, out_dir: str, formats: Iterable[str] = DEFAULT_FORMATS, min_confidence: float = 0.0,
           separator: str = BIRDNET_SEPARATOR) -> Summary:
    """Writes every format for every exported audio file under ``out_dir``; returns what was done."""
    chosen = [FORMATS[name] for name in formats]
    names = relative_names([row['audio_file'] for row in store.query(FILES_SQL, {})])
    skipped: list[str] = []
    summary = Summary()
    for item in read_detections(store, min_confidence, skipped, separator):
        base = os.path.join(out_dir, *names[item.audio_file].split('/'))
        summary.files += 1
        summary.detections += len(item.detections)
        for fmt in chosen:
            summary.written += len(fmt.write(item, base))
    summary.skipped = len(skipped)
    return summary


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='python -m results.export',
        description='Write each audio file\'s detections (the events table) as the files bioacoustics tools open.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--results', required=True,
                        help='the pipeline\'s --output_table: a SQLite file (*.db) or PROJECT:DATASET.TABLE')
    parser.add_argument('--out', required=True, help='folder to write into (created if missing)')
    parser.add_argument('--format', default=','.join(DEFAULT_FORMATS),
                        help='comma-separated: ' + '; '.join(f'{f.name}: {f.help}' for f in FORMATS.values())
                        + f'; {CLIPS}: reviewed detections as WAVs in folders per class, for model.train')
    parser.add_argument('--min_confidence', type=float, default=0.0,
                        help='leave out detections below this confidence (the pipeline already kept only those '
                             'at or above its --event_min_confidence)')
    parser.add_argument('--label_separator', default=BIRDNET_SEPARATOR,
                        help='what splits a label into its scientific and common name (BirdNET\'s labels); '
                             'empty: labels are plain names, both columns get the whole label')
    clips.add_arguments(parser)
    args = parser.parse_args(argv)
    args.formats = [name.strip() for name in args.format.split(',') if name.strip()]
    unknown = [name for name in args.formats if name not in FORMATS and name != CLIPS]
    if unknown or not args.formats:
        parser.error(f'--format: unknown {", ".join(unknown) or "(none given)"}; choose from '
                     f'{", ".join([*FORMATS, CLIPS])}')
    return args


def main(argv: Sequence[str]) -> int:
    args = parse(argv)
    per_file = [name for name in args.formats if name != CLIPS]
    try:
        store = open_results(args.results)
        if CLIPS in args.formats:
            clips.run(store, args.out, args)
        if not per_file:
            return 0
        summary = export(store, args.out, per_file, args.min_confidence, args.label_separator)
    except ResultsUnavailable as e:
        print(e, file=sys.stderr)
        return 1
    print(f'{summary.files} audio files, {summary.detections} detections: {summary.written} files written to '
          f'{args.out} ({", ".join(per_file)})')
    if summary.skipped:
        print(f'{summary.skipped} files left out: their events were not computed (the pipeline ran with '
              '--events=false)', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
