"""Species in the dashboard, in the browser: a multi-label model's detections (several species in the same window)
on the timeline by common name, the species filter by common or scientific name, and each detection's own clip.
Rows, audio and the model's metadata are written here; real dashboard (``--model_uri``), real Chromium.
"""
from __future__ import annotations

import io
import os
from urllib.parse import quote

import numpy as np
import pytest
import soundfile as sf

from audio import synth
from audio.spectrogram import SpectrogramStyle, render_png
from model.metadata import ModelMetadata, save_metadata
from results import schema, sqlite_store
from tests.app.browser import click_grid_row, dashboard, grid_rows, launch_chromium, open_page, settled

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip('playwright.sync_api')
expect = playwright_api.expect

BLACKBIRD = 'Turdus merula_Eurasian Blackbird'
WREN = 'Troglodytes troglodytes_Eurasian Wren'
ROBIN = 'Erithacus rubecula_European Robin'
RATE = 16000
PROCESSED_AT = '2026-12-05T03:00:00.000000Z'
# (start, end, label, confidence): BirdNET's one detection per 3-s window and species.
DETECTIONS = {
    'site-a.wav': [(0.0, 3.0, BLACKBIRD, 0.81), (0.0, 3.0, WREN, 0.42), (3.0, 6.0, BLACKBIRD, 0.7),
                   (6.0, 9.0, ROBIN, 0.55)],
    'site-b.wav': [(3.0, 6.0, ROBIN, 0.66)],
}


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp('species')
    model_dir = str(root / 'model')
    save_metadata(ModelMetadata(model_version='birdnet-test', labels=(BLACKBIRD, WREN, ROBIN), sample_rate_hz=48000,
                                window_samples=144000, hop_samples=144000, multi_label=True, merge_consecutive=1,
                                label_fields=('scientific_name', 'common_name'), label_separator='_'), model_dir)
    rng = np.random.default_rng(3)
    rows = []
    for i, (name, detections) in enumerate(DETECTIONS.items()):
        samples = synth.make('chirp', rng, 12.0, RATE)
        path = str(root / name)
        sf.write(path, samples, RATE)
        png = str(root / f'{name}.png')
        with open(png, 'wb') as f:
            f.write(render_png(samples, RATE, name, SpectrogramStyle(min_width=480, max_width=800)))
        generation = str(os.stat(path).st_mtime_ns)
        processed_at = PROCESSED_AT.replace('03:00', f'03:0{i}')
        rows.append({
            'audio_file': path, 'generation': generation, 'spectrogram_image': png, 'label': detections[0][2],
            'confidence': detections[0][3], 'scores': [{'label': detections[0][2], 'score': detections[0][3]}],
            'model_version': 'birdnet-test', 'event_count': len(detections), 'duration_seconds': 12.0,
            'sample_rate_hz': RATE, 'channels': 1, 'event_time': None, 'processed_at': processed_at,
            schema.ROW_EVENTS_KEY: [{'audio_file': path, 'generation': generation, 'start_seconds': s,
                                     'end_seconds': e, 'label': label, 'confidence': c,
                                     'model_version': 'birdnet-test', 'processed_at': processed_at}
                                    for s, e, label, c in detections]})
    db = str(root / 'results.db')
    with sqlite_store.connect(db) as conn:
        sqlite_store.write_processed(conn, rows)
    return {'db': db, 'model': model_dir, 'rows': rows}


@pytest.fixture(scope='module')
def page(sample, tmp_path_factory):
    log = str(tmp_path_factory.mktemp('logs') / 'dashboard.log')
    with dashboard(['--results', sample['db'], '--model_uri', sample['model']], log) as url:
        with playwright_api.sync_playwright() as p:
            browser = launch_chromium(p)
            page = open_page(browser, url)
            yield page
            browser.close()


def test_species_share_a_moment_on_the_timeline_by_common_name(page):
    # The newest file (site-b) opens first; open site-a, whose first window holds two species.
    click_grid_row(page, 'files_table', 1)
    settled(page)
    frame = page.frame_locator('iframe[title="Events of the inspected file"]')
    bands = frame.locator('.band')
    expect(bands).to_have_count(4)
    # A lane per species, named by its common name; both names in the tooltips.
    expect(frame.locator('.lane .name')).to_have_text(['Eurasian Blackbird', 'Eurasian Wren', 'European Robin'])
    blackbird, wren = bands.filter(has_text='0.81'), bands.filter(has_text='0.42')
    assert wren.get_attribute('title').startswith('Eurasian Wren (Troglodytes troglodytes) · 0.00–3.00 s')
    first, second = blackbird.bounding_box(), wren.bounding_box()
    assert abs(first['x'] - second['x']) <= 1 and first['y'] != second['y']   # same moment, its own lane


def open_by_link(page, row) -> None:
    """Opens a file through its link, so a test does not depend on which file an earlier test left open."""
    base = page.url.split('?')[0]
    page.goto(f"{base}?file={quote(row['audio_file'], safe='')}&gen={row['generation']}")
    settled(page)


def test_each_detection_plays_its_own_clip(page, sample):
    open_by_link(page, next(r for r in sample['rows'] if r['audio_file'].endswith('site-a.wav')))
    rows = grid_rows(page, 'detections_table')
    expect(rows).to_have_count(4)
    header = page.locator('.st-key-detections_table [data-testid="stDataFrame"] thead th')
    names = [header.nth(i).inner_text().strip() for i in range(header.count())]
    assert {'Common name', 'Scientific name', 'Confidence'} <= set(names)
    expect(rows.nth(3)).to_contain_text('European Robin')
    expect(rows.nth(3)).to_contain_text('Erithacus rubecula')

    click_grid_row(page, 'detections_table', 3)    # the robin, 6 to 9 s
    clip = page.locator('.st-key-detection_clip audio')
    expect(clip).to_have_count(1)
    clip.evaluate('a => new Promise(done => a.readyState >= 1 ? done() : a.addEventListener("loadedmetadata", done))')
    assert abs(clip.evaluate('a => a.duration') - 3.0) < 0.05
    # The clip is those 3 s of the file itself.
    data = clip.evaluate('a => fetch(a.src).then(r => r.arrayBuffer()).then(b => Array.from(new Uint8Array(b)))')
    played, rate = sf.read(io.BytesIO(bytes(data)), dtype='float32')
    original, _ = sf.read(sample['rows'][0]['audio_file'], dtype='float32')
    assert rate == RATE and len(played) == 3 * RATE
    assert np.max(np.abs(played - original[6 * RATE:9 * RATE])) < 1e-3   # 16-bit copy of the same samples


def test_filter_by_species_typed_as_scientific_or_common_name(page, sample):
    files = grid_rows(page, 'files_table')
    expect(files).to_have_count(2)
    box = page.get_by_test_id('stSelectbox').filter(has_text='Has an event of label')
    box.click()
    page.keyboard.type('Troglodytes')
    page.get_by_role('option', name='Eurasian Wren (Troglodytes troglodytes)', exact=True).click()
    expect(files).to_have_count(1)
    expect(files.first).to_contain_text('site-a.wav')
    box.click()
    page.keyboard.type('European Robin')
    page.get_by_role('option', name='European Robin (Erithacus rubecula)', exact=True).click()
    expect(files).to_have_count(2)
