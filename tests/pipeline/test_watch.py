"""Watch mode's pieces: listing with Beam's glob rules, what counts as ready, the options."""
import os

import pytest

from pipeline.main import parse
from pipeline.options import OptionsError
from cloud.listing import Listed, Lister
from pipeline.watch import ignored_paths, ready
from tests.helpers import write_bytes


def test_lister_follows_the_glob_and_skips_outputs_and_partial_uploads(tmp_path):
    root = tmp_path / 'in'
    wanted = [write_bytes(root, 'a.wav', b'x'), write_bytes(root, 'deep/er/b.flac', b'xy'),
              write_bytes(root, 'notes.txt', b'z')]  # batch gives a non-audio file its NotAudio row; so does watch
    write_bytes(root, '.upload-abc.partial', b'half')        # the dashboard writing an upload
    write_bytes(root, 'images/x.png', b'png')                # our own spectrograms
    write_bytes(root, 'results.db', b'db')
    write_bytes(root, 'results.db-wal', b'wal')
    lister = Lister(f'{root}/**', [str(root / 'images'), str(root / 'results.db'), str(root / 'results.db-wal')])
    listed = lister.list()
    assert sorted(listed) == sorted(wanted)
    a = listed[wanted[0]]
    assert a.size == 1 and a.generation == str(os.stat(wanted[0]).st_mtime_ns) and not a.whole
    assert sorted(Lister(f'{root}/*.wav').list()) == [wanted[0]]


def test_a_file_is_ready_when_it_stopped_changing():
    grown = Listed('/in/a.wav', 10, '1', modified=100.0)
    still = Listed('/in/a.wav', 20, '2', modified=101.0)
    clock = lambda: 101.5  # noqa: E731
    assert ready({grown.path: still}, {grown.path: grown}, 2.0, clock) == []        # still growing
    assert ready({still.path: still}, {still.path: still}, 2.0, clock) == []        # same twice, touched 0.5 s ago
    assert ready({still.path: still}, {still.path: still}, 2.0, lambda: 103.0) == [still]   # and now quiet
    assert ready({still.path: still}, {}, 2.0, clock) == []                         # just appeared, just touched
    old = Listed('/in/old.wav', 5, '3', modified=10.0)
    assert ready({old.path: old}, {}, 2.0, clock) == [old]                          # found at a restart: quiet
    gcs = Listed('gs://b/x.wav', 5, '17', modified=101.4, whole=True)
    assert ready({gcs.path: gcs}, {}, 2.0, clock) == [gcs]                          # objects are finalized


def test_watch_options(tmp_path):
    common = ['--output_table', str(tmp_path / 'r.db'), '--spectrogram_location', str(tmp_path / 'img')]
    _, config = parse(['--input_pattern', f'{tmp_path}/**', '--watch', *common])
    assert config.watch and config.watch_interval_seconds == 2.0
    assert str(tmp_path / 'r.db-wal') in ignored_paths(config)
    for bad, message in ((['--input_subscription', 'projects/pppppp/subscriptions/sss', '--watch'], 'needs --input'),
                         (['--input_pattern', 'x/**', '--watch', '--reprocess'], 'reprocess'),
                         (['--input_pattern', 'x/**', '--watch', '--watch_interval_seconds', '0'], 'positive'),
                         (['--input_pattern', 'x/**', '--watch', '--runner', 'DataflowRunner'], 'Dataflow')):
        with pytest.raises(OptionsError, match=message):
            parse([*bad, *common])


def test_the_watcher_hands_over_when_it_first_listed_each_file(tmp_path):
    """Latency starts when the pipeline first saw a file, not at its modification time (a copy keeps an old one)."""
    import threading
    import time

    from pipeline.watch import watch

    folder = tmp_path / 'in'
    old = write_bytes(folder, 'copied.wav', b'x')
    os.utime(old, (1.7e9, 1.7e9))                        # copied with its 2023 modification time: ready at once
    fresh = write_bytes(folder, 'new.wav', b'y')         # just written: ready once untouched for SETTLE_SECONDS
    common = ['--output_table', str(tmp_path / 'r.db'), '--spectrogram_location', str(tmp_path / 'img')]
    _, config = parse(['--input_pattern', f'{folder}/**', '--watch', '--watch_interval_seconds', '0.2', *common])
    stop, batches = threading.Event(), []

    def run_batch(files):
        batches.append((time.time(), files))
        if sum(len(f) for _, f in batches) == 2:
            stop.set()

    started = time.time()
    watch(config, run_batch, stop, log=lambda line: None)
    seen = {f.path: (f.first_seen, ran_at) for ran_at, files in batches for f in files}
    assert set(seen) == {old, fresh}
    assert started <= seen[old][0] <= seen[old][1]
    assert started <= seen[fresh][0] < seen[fresh][1] - 1.0   # its first listing, not the one that found it ready


@pytest.mark.e2e
def test_a_run_that_failed_a_file_says_so(tmp_path, tiny_model_dir):
    import threading

    from pipeline.watch import batch_runner, watch
    from tests.helpers import write_clip

    good = write_clip(tmp_path / 'in', 'good.wav', seconds=1.0)
    bad = write_bytes(tmp_path / 'in', 'picture.wav', b'\x89PNG\r\n\x1a\n' + bytes(200))
    for path in (good, bad):
        os.utime(path, (1e9, 1e9))  # untouched for long: whole at the first listing
    options, config = parse(['--input_pattern', f'{tmp_path}/in/**', '--watch', '--watch_interval_seconds', '0.2',
                             '--output_table', str(tmp_path / 'r.db'), '--spectrogram_location', str(tmp_path / 's'),
                             '--model_uri', tiny_model_dir, '--inference_runtime', 'savedmodel'])
    lines: list[str] = []
    stop = threading.Event()

    def log(line: str) -> None:
        lines.append(line)
        if 'done in' in line:
            stop.set()
    watch(config, batch_runner(options, config), stop, log)
    assert lines[-1].endswith(f': 1 ok, 1 failed (picture.wav); why is in the error rows ({tmp_path}/r.db)'), lines
