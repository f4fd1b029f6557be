"""How well events line up with where the sounds are, through the real pipeline.

Builds one long recording from labelled clips at known times (gaps of low noise between them), runs
``pipeline.main`` on it (SQLite sink), reads its ``events`` table back and matches events to the truth.

    # spoken digits of a speaker the model never heard (FSDD, leave-one-speaker-out model):
    python -m benchmarks.events_eval --model artifacts/models/fsdd-without-theo \
        --fsdd ../shared/datasets/fsdd/recordings --speaker theo --seconds 60 \
        --report artifacts/reports/events-theo.json
    # the demo classes (no data needed):
    python -m benchmarks.events_eval --model artifacts/models/demo --demo --seconds 60
    # several sequences (--seed 0..4) pooled into one set of figures:
    python -m benchmarks.events_eval pool artifacts/reports/events-theo*.json

Truth boundaries are the clip's sound, not its file: the clip trimmed to its 20 ms frames within 35 dB of its
loudest (``audio.synth.audible_extent``), so leading and trailing room tone does not count. A truth
sound is *found* when an event of its label overlaps it (each event counts for one sound, the largest overlap
first). Boundary errors are event start/end minus truth start/end, in seconds, for the sounds found.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from dataclasses import asdict
from typing import Optional, Sequence

import numpy as np

def build_sequence(clips, rate: int, seconds: float, seed: int, gap_seconds=(1.0, 2.0), noise_dbfs: float = -60.0):
    from audio import synth

    return synth.sequence(clips, rate, seconds, np.random.default_rng(seed), gap_seconds, noise_dbfs)


def fsdd_clips(data_dir: str, speaker: str, rate: int, seed: int) -> list[tuple[np.ndarray, str, str]]:
    from model.datasets import fsdd_examples, load_audio

    examples = [e for e in fsdd_examples(data_dir) if e.speaker == speaker]
    random.Random(seed).shuffle(examples)
    return [(load_audio(e.path, rate), e.label, os.path.basename(e.path)) for e in examples[:200]]


def demo_clips(rate: int, seed: int, count: int = 60) -> list[tuple[np.ndarray, str, str]]:
    from audio import synth

    rng = np.random.default_rng([seed, 2])
    labels = sorted(synth.DEMO_CLASSES)
    return [(synth.make(labels[i % len(labels)], rng, rng.uniform(1.0, 3.0), rate), labels[i % len(labels)],
             f'{labels[i % len(labels)]}_{i}') for i in rng.permutation(count)]


def match(truth, events: Sequence[dict]) -> dict:
    """Greedy one-to-one matching by overlap; the figures of the module doc."""
    pairs = []
    for t_index, t in enumerate(truth):
        for e_index, e in enumerate(events):
            overlap = min(t.end_seconds, e['end_seconds']) - max(t.start_seconds, e['start_seconds'])
            if overlap > 0:
                pairs.append((overlap, t_index, e_index))
    used_t, used_e, matched = set(), set(), {}
    for _overlap, t_index, e_index in sorted(pairs, reverse=True):
        if t_index not in used_t and e_index not in used_e:
            used_t.add(t_index)
            used_e.add(e_index)
            matched[t_index] = e_index
    right = {t: e for t, e in matched.items() if events[e]['label'] == truth[t].label}
    starts = np.array([events[e]['start_seconds'] - truth[t].start_seconds for t, e in right.items()])
    ends = np.array([events[e]['end_seconds'] - truth[t].end_seconds for t, e in right.items()])

    def stats(errors: np.ndarray) -> dict:
        if not len(errors):
            return {}
        return {'mean': round(float(errors.mean()), 3), 'mean_abs': round(float(np.abs(errors).mean()), 3),
                'median_abs': round(float(np.median(np.abs(errors))), 3),
                'max_abs': round(float(np.abs(errors).max()), 3)}

    return {'sounds': len(truth), 'events': len(events), 'found_right_label': len(right),
            'matched_wrong_label': len(matched) - len(right), 'missed': len(truth) - len(matched),
            'events_not_on_a_sound': len(events) - len(matched),
            'start_error_seconds': stats(starts), 'end_error_seconds': stats(ends),
            'start_errors': [round(float(x), 3) for x in starts], 'end_errors': [round(float(x), 3) for x in ends]}


def within(errors: Sequence[float], limit: float) -> int:
    return sum(abs(x) <= limit + 1e-9 for x in errors)


def full_span_events(model: str, samples: np.ndarray, min_confidence: float) -> list[dict]:
    """The events of ``samples`` with full window spans, scored by the pipeline's handler outside the pipeline."""
    import dataclasses

    from audio.events import detect_events
    from model.handlers import SavedModelHandler
    from transforms.inference import event_settings, window_timing

    handler = SavedModelHandler(model)
    (result,) = handler.run_inference([samples], handler.load_model())
    timing = dataclasses.replace(window_timing(handler.metadata, len(samples) / handler.metadata.sample_rate_hz),
                                 full_spans=True)
    return [dataclasses.asdict(e) for e in detect_events(result.inference, handler.metadata.labels, timing,
                                                         event_settings(min_confidence))]


def run_pipeline(wav: str, model: str, work: str, extra: Sequence[str] = ()) -> list[dict]:
    from pipeline.main import run
    from results.store import open_store
    from results.tables import EVENTS

    db = os.path.join(work, 'results.db')
    code = run(['--input_pattern', wav, '--output_table', db, '--spectrogram_location', os.path.join(work, 'png'),
                '--model_uri', model, *extra])
    if code != 0:
        raise SystemExit(f'pipeline exited {code}')
    return sorted(open_store(db).read_rows(EVENTS), key=lambda e: e['start_seconds'])


def pool(paths: Sequence[str]) -> dict:
    """The figures of several reports (one sequence each) taken together."""
    reports = [json.load(open(p)) for p in paths]
    starts = np.array([x for r in reports for x in r['start_errors']])
    ends = np.array([x for r in reports for x in r['end_errors']])
    hop = reports[0]['hop_seconds']
    counts = {k: sum(r[k] for r in reports) for k in ('sounds', 'events', 'found_right_label', 'matched_wrong_label',
                                                      'missed', 'events_not_on_a_sound')}
    pooled = {'sequences': len(reports), 'seeds': [r['seed'] for r in reports], **counts,
              'start_mean_abs': round(float(np.abs(starts).mean()), 3),
              'start_max_abs': round(float(np.abs(starts).max()), 3),
              'end_mean_abs': round(float(np.abs(ends).mean()), 3), 'end_max_abs': round(float(np.abs(ends).max()), 3),
              'starts_within_one_hop': int(within(starts, hop)), 'ends_within_one_hop': int(within(ends, hop))}
    print(json.dumps(pooled, indent=2))
    return pooled


def main(argv: Optional[Sequence[str]] = None) -> dict:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ['pool']:
        return pool(argv[1:])
    parser = argparse.ArgumentParser(prog='python -m benchmarks.events_eval', description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--fsdd', help='FSDD recordings directory')
    source.add_argument('--demo', action='store_true', help='use the synthetic demo classes')
    parser.add_argument('--speaker', default='theo', help='FSDD speaker whose recordings make the sequence')
    parser.add_argument('--seconds', type=float, default=60.0)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--min-confidence', type=float, default=0.5)
    parser.add_argument('--report', help='write the figures (JSON) here')
    parser.add_argument('--keep', help='keep the sequence WAV and the pipeline outputs in this folder')
    args = parser.parse_args(argv)

    from audio import encode
    from model.metadata import load_metadata

    metadata = load_metadata(args.model)
    rate = metadata.sample_rate_hz
    clips = fsdd_clips(args.fsdd, args.speaker, rate, args.seed) if args.fsdd else demo_clips(rate, args.seed)
    samples, truth = build_sequence(clips, rate, args.seconds, args.seed)
    work = args.keep or tempfile.mkdtemp(prefix='events-eval-')
    os.makedirs(work, exist_ok=True)
    wav = encode.write(os.path.join(work, 'sequence.wav'), samples, rate, 'wav')
    started = time.monotonic()
    events = run_pipeline(wav, args.model, work, ['--event_min_confidence', str(args.min_confidence)])
    hop = metadata.hop_samples / rate
    report = {'model': args.model, 'model_version': metadata.model_version,
              'data': f'FSDD speaker {args.speaker}' if args.fsdd else 'demo classes', 'seconds': args.seconds,
              'seed': args.seed, 'hop_seconds': hop, 'window_seconds': metadata.window_samples / rate,
              'min_confidence': args.min_confidence, 'pipeline_wall_seconds': round(time.monotonic() - started, 1),
              **match(truth, events),
              'truth': [asdict(t) for t in truth],
              'events_found': [{k: e[k] for k in ('start_seconds', 'end_seconds', 'label', 'confidence')}
                               for e in events]}
    report['starts_within_one_hop'] = within(report['start_errors'], hop)
    report['ends_within_one_hop'] = within(report['end_errors'], hop)
    # The same windows with their full spans (start of the first to end of the last window, BirdNET-style),
    # for comparison with the boundaries the pipeline reports (audio.events).
    full_match = match(truth, full_span_events(args.model, samples, args.min_confidence))
    report['full_window_spans'] = {k: full_match[k] for k in ('found_right_label', 'start_error_seconds',
                                                               'end_error_seconds')}
    report['full_window_spans']['starts_within_one_hop'] = within(full_match['start_errors'], hop)
    report['full_window_spans']['ends_within_one_hop'] = within(full_match['end_errors'], hop)
    print(f"{report['data']}, {args.seconds:g} s, {report['sounds']} sounds: {report['found_right_label']} found with "
          f"the right label, {report['matched_wrong_label']} with a wrong one, {report['missed']} missed; "
          f"{report['events_not_on_a_sound']} events on no sound. "
          f"Boundaries (s): start {report['start_error_seconds']}, "
          f"end {report['end_error_seconds']}; within one hop ({hop:g} s): starts {report['starts_within_one_hop']}, "
          f"ends {report['ends_within_one_hop']} of {report['found_right_label']}. With full window spans: "
          f"{report['full_window_spans']}")
    if args.report:
        os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
        with open(args.report, 'w') as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == '__main__':
    main()
