"""The whole local loop (``make ui`` = ``python -m app.serve --watch``): the dashboard and a watch-mode pipeline
over its upload folder. Uploads on the page become result rows on the page with no other action; stopping the
server stops both. Real processes, real browser, nothing mocked.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from audio import encode, synth
from stack.processes import free_port
from tests.app.browser import REPO, dashboard, grid_rows, launch_chromium

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip('playwright.sync_api')
expect = playwright_api.expect


def test_uploads_become_rows_on_the_page(tmp_path, tiny_model_dir):
    inbox, results = tmp_path / 'input', tmp_path / 'out' / 'results.db'
    inbox.mkdir()
    log = str(tmp_path / 'loop.log')
    args = ['--watch', '--results', str(results), '--input', str(inbox), '--model_uri', tiny_model_dir]
    clips = {name: encode.encode(synth.make(label, np.random.default_rng(i), 1.5, 16000), 16000, kind)
             for i, (name, label, kind) in enumerate([('one.wav', 'tone', 'wav'), ('two.flac', 'chirp', 'flac'),
                                                      ('three.aiff', 'hum', 'aiff')])}
    with dashboard(args, log) as url, playwright_api.sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={'width': 1400, 'height': 1600})
        page.set_default_timeout(30_000)
        page.goto(url)
        expect(page.get_by_text('A pipeline runs beside this page')).to_be_visible()
        page.locator('input[type=file]').set_input_files(
            [{'name': n, 'mimeType': 'audio/wav', 'buffer': b} for n, b in clips.items()])
        # No click, no reload: the pipeline beside the page processes them and the page refreshes itself.
        processed = page.get_by_test_id('stMetric').filter(has=page.get_by_text('Processed', exact=True))
        expect(processed.get_by_test_id('stMetricValue')).to_have_text('3', timeout=120_000)
        rows = grid_rows(page, 'files_table')
        expect(rows).to_have_count(3)
        for name in clips:
            expect(rows.filter(has_text=name)).to_have_count(1)
        expect(page.locator('audio')).to_have_count(1)
        expect(page.get_by_role('img', name='Spectrogram of input/')).to_be_visible()
        browser.close()
    assert 'Watching' in open(log).read()


def _children(pid: int) -> list[int]:
    out = subprocess.run(['ps', '-o', 'pid=', '--ppid', str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _running(pid: int) -> bool:
    try:
        state = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[0]
    except OSError:
        return False
    return state not in ('Z', 'X')


def test_stopping_the_server_stops_the_pipeline_too(tmp_path, tiny_model_dir):
    inbox = tmp_path / 'input'
    inbox.mkdir()
    log = tmp_path / 'loop.log'
    with open(log, 'w') as out:
        proc = subprocess.Popen([sys.executable, '-m', 'app.serve', '--watch', '--port', str(free_port()),
                                 '--results', str(tmp_path / 'r.db'), '--input', str(inbox),
                                 '--model_uri', tiny_model_dir], stdout=out, stderr=subprocess.STDOUT,
                                env=dict(os.environ, PYTHONPATH=REPO), cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while 'Watching' not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        children = _children(proc.pid)
        assert len(children) == 2, children  # the pipeline and the dashboard
        proc.terminate()  # what Ctrl-C in `make ui` does
        assert proc.wait(timeout=60) == 0
        assert not [c for c in children if _running(c)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
