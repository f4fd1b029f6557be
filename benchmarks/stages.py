"""Stage costs: where a file's time goes, one stage at a time, in one process.

    python -m benchmarks.stages [--input DIR] [--files 200] [--repeats 3]

Per file, over a spread sample of the input: read + decode at the file's own
rate, resampling to the model's rate, the STFT, composing and encoding the
PNG, writing it, and the row; the model per window at several batch sizes;
and the 5-second clip the spectrogram target is stated for, next to the
original design's pyplot figure of the same clip. Each figure is the mean per
file of one pass; the table shows the median of the passes and their spread,
as wall time and as CPU time (CPU time is the steadier of the two on a busy
machine: other processes stretch the wall clock, not the work).
"""
from __future__ import annotations

import argparse
import io
import os
import sqlite3
import tempfile
import time
from typing import Callable, Optional, Sequence

import numpy as np
import soxr

from audio import synth
from audio.decode import decode
from audio.records import AudioInfo, AudioObject, Classification, ProcessedAudio
from audio.spectrogram import SpectrogramStyle, power_spectrogram, render_png, to_db
from benchmarks import report
from benchmarks.inputs import list_audio, require_model, resolve_input, spread_subset
from pipeline.options import DEFAULT_MODEL_URI
from results import schema, sqlite_store

BATCH_SIZES = (1, 8, 64, 256)


def _time_each(items: Sequence, fn: Callable) -> tuple[float, float]:
    """(wall ms, CPU ms) per item, averaged over one pass."""
    wall, cpu = time.perf_counter(), time.process_time()
    for item in items:
        fn(item)
    return 1000 * (time.perf_counter() - wall) / len(items), 1000 * (time.process_time() - cpu) / len(items)


def _row(i: int) -> dict:
    item = ProcessedAudio(AudioObject(uri=f'/bench/{i}.wav', name=f'{i}.wav', generation=str(i)),
                          AudioInfo(8000, 1, 0.5), f'/bench/{i}.png')
    result = Classification('tone', 0.9, (('tone', 0.9), ('hum', 0.1)), 'bench', 1)
    return schema.processed_row(item, result, time.time())


def file_stages(files: list[str], rate: int, scratch: str) -> dict[str, Callable[[], tuple[float, float]]]:
    """Each stage as a callable that makes one timed pass over the files."""
    blobs = []
    for path in files:
        with open(path, 'rb') as f:
            blobs.append((path, f.read()))
    decoded = [decode(io.BytesIO(data), rate, 1e9) for _, data in blobs]
    at_rate = [samples for samples, _ in decoded]
    native_rates = [info.sample_rate_hz for _, info in decoded]
    native = [decode(io.BytesIO(data), r, 1e9)[0] for (_, data), r in zip(blobs, native_rates)]
    style = SpectrogramStyle()
    pngs = [render_png(s, rate, os.path.basename(p), style) for s, (p, _) in zip(at_rate, blobs)]
    png_dir = os.path.join(scratch, 'png')
    os.makedirs(png_dir, exist_ok=True)
    rows = [_row(i) for i in range(len(files))]

    def read_decode(i):
        with open(files[i], 'rb') as f:
            decode(f, native_rates[i], 1e9)

    def write_png(i):
        with open(os.path.join(png_dir, f'{i}.png'), 'wb') as f:
            f.write(pngs[i])

    def rows_batched():
        table = os.path.join(scratch, f'batched-{time.time_ns()}.db')
        wall, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(rows), 500):  # the SQLite sink's flush size
            with sqlite_store.connect(table) as conn:
                sqlite_store.write_processed(conn, rows[start:start + 500])
        return 1000 * (time.perf_counter() - wall) / len(rows), 1000 * (time.process_time() - cpu) / len(rows)

    def rows_one_by_one():
        table = os.path.join(scratch, f'single-{time.time_ns()}.db')
        with sqlite_store.connect(table):
            pass
        conn = sqlite3.connect(table, timeout=60)
        try:
            return _time_each(rows, lambda row: (sqlite_store.write_processed(conn, [row]), conn.commit()))
        finally:
            conn.close()

    indices = range(len(files))
    return {
        'read + decode (own rate)': lambda: _time_each(indices, read_decode),
        f'resample to {rate} Hz': lambda: _time_each(indices, lambda i: soxr.resample(native[i], native_rates[i],
                                                                                      rate)),
        'STFT + dB': lambda: _time_each(at_rate, lambda s: to_db(power_spectrogram(s, style)[0], style.top_db)),
        'spectrogram PNG (STFT, image, encode)': lambda: _time_each(
            indices, lambda i: render_png(at_rate[i], rate, os.path.basename(files[i]), style)),
        'write PNG file': lambda: _time_each(indices, write_png),
        'row, batched (500 per commit)': rows_batched,
        'row, one INSERT + commit each': rows_one_by_one,
    }


def window_stages(model_dir: str) -> tuple[dict[str, Callable[[], tuple[float, float]]], int]:
    """Inference per window: the model call alone at several batch sizes, per runtime; and through the handler
    (``run_inference``) on 5-s files and on one-window files, as the pipeline calls it, per runtime."""
    from model.handlers import SavedModelHandler
    from model.serving import LITERT, LogMelFrontEnd, local_handler, one_blas_thread

    one_blas_thread()   # as the pipeline's workers (model/serving.py)
    handlers = {'SavedModel': SavedModelHandler(model_dir)}
    serving = local_handler(model_dir)
    if serving.runtime == LITERT:
        handlers['LiteRT'] = serving
    metadata = handlers['SavedModel'].metadata
    rng = np.random.default_rng(0)
    windows = rng.uniform(-0.5, 0.5, (max(BATCH_SIZES), metadata.window_samples)).astype(np.float32)
    rate = metadata.sample_rate_hz
    five_second = [rng.uniform(-0.5, 0.5, 5 * rate).astype(np.float32) for _ in range(7)]       # 63 windows
    one_window = [rng.uniform(-0.5, 0.5, rate // 2).astype(np.float32) for _ in range(64)]     # 64 windows
    stages = {}
    for name, handler in handlers.items():
        model = handler.load_model()
        if name == 'LiteRT':   # the model call alone takes log-mel patches
            front_end = LogMelFrontEnd(serving.front_end.config)
            inputs = np.stack([front_end(w) for w in windows])
        else:
            inputs = windows
        for size in BATCH_SIZES:
            handler.score_windows(model, inputs[:size])  # the first call of a shape is slower
            calls = max(4, 512 // size)

            def one_pass(handler=handler, model=model, inputs=inputs, size=size, calls=calls):
                wall, cpu = _time_each(range(calls), lambda _: handler.score_windows(model, inputs[:size]))
                return wall / size, cpu / size
            what = 'model call' if name == 'SavedModel' else 'CNN call, front end not included'
            stages[f'inference {name}: {what}, batch of {size} (per window)'] = one_pass
        for label, files in (('5-s files, 63 windows a batch', five_second),
                             ('one-window files, 64 a batch', one_window)):
            count = sum(metadata.window_count(len(f)) for f in files)
            handler.run_inference(files, model)

            def through_handler(handler=handler, model=model, files=files, count=count):
                wall, cpu = _time_each(range(8), lambda _: handler.run_inference(files, model))
                return wall / count, cpu / count
            stages[f'inference {name} through the handler, {label} (per window)'] = through_handler
    return stages, rate


def clip_stages(rate: int) -> dict[str, Callable[[], tuple[float, float]]]:
    """The 5-second clip of the spectrogram target, ours and the original's figure."""
    clip = synth.make('chirp', np.random.default_rng(0), 5.0, rate)
    style = SpectrogramStyle()

    def original_figure(_):
        import librosa
        import librosa.display
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt

        y = librosa.resample(clip, orig_sr=rate, target_sr=22050)
        db = librosa.amplitude_to_db(np.abs(librosa.stft(y)), ref=np.max)
        fig, ax = plt.subplots(figsize=(14, 5))
        image = librosa.display.specshow(db, sr=22050, x_axis='time', y_axis='hz', ax=ax)
        fig.colorbar(image, ax=ax, format='%+2.0f dB')
        ax.set_title('clip.wav')
        fig.savefig(io.BytesIO(), format='png')
        plt.close(fig)

    render_png(clip, rate, 'warm-up', style)
    original_figure(None)
    return {
        '5 s clip: spectrogram PNG (target <= 10 ms)': lambda: _time_each(
            range(20), lambda _: render_png(clip, rate, 'clip.wav', style)),
        '5 s clip: original pyplot figure + savefig': lambda: _time_each(range(3), original_figure),
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.stages', description=__doc__.split('\n')[0])
    parser.add_argument('--input', help='folder of audio files (default as for benchmarks.throughput)')
    parser.add_argument('--files', type=int, default=200, help='how many files, spread over the folder')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--model', default=DEFAULT_MODEL_URI)
    parser.add_argument('--out', help=f'JSON file (default: {report.RESULTS_DIR}/stages.json)')
    args = parser.parse_args(argv)

    model_dir = require_model(args.model)
    folder, description = resolve_input(args.input, report.INPUTS_DIR)
    files = spread_subset(list_audio(folder), args.files)
    before = report.machine()
    print(f'Stage costs: {len(files)} files from {description}, {args.repeats} passes; load average '
          f'{before["load_average"][0]:.1f} on {before["cpus"]} cores', flush=True)
    with tempfile.TemporaryDirectory(prefix='bench-stages-') as scratch:
        windows, rate = window_stages(model_dir)
        stages = {**file_stages(files, rate, scratch), **windows, **clip_stages(rate)}
        measured = {name: [one_pass() for _ in range(args.repeats)] for name, one_pass in stages.items()}
    results = {name: {'wall_ms': report.summary([w for w, _ in passes]),
                      'cpu_ms': report.summary([c for _, c in passes])} for name, passes in measured.items()}
    print()
    print(report.table(['stage', 'wall ms', 'spread', 'CPU ms'],
                       [[name, report.fmt(r['wall_ms']['median']), report.spread_text(r['wall_ms']),
                         report.fmt(r['cpu_ms']['median'])] for name, r in results.items()]))
    print('\n(per file; inference per window; CPU ms above wall ms means several threads, as TensorFlow uses)')
    path = report.save('stages', {'input': description, 'files': len(files), 'machine_before': before,
                                  'stages': results}, args.out)
    print(f'\nwrote {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
