"""Takes the dashboard's picture in docs/dashboard.md with the browser tests' own setup.

    python -m tests.app.screenshot docs/dashboard.png      # or: make dashboard-screenshot

A day of made-up results (40 files, 4 failures, real spectrograms and audio),
the dashboard served by ``python -m app.serve``, Debian's headless Chromium.
"""
from __future__ import annotations

import argparse
import os
import tempfile

from playwright.sync_api import sync_playwright

from tests.app import sample_results
from tests.app.browser import click_grid_row, dashboard, launch_chromium, open_page, settled

WIDTH, HEIGHT = 1400, 2150


def take(out: str) -> None:
    with tempfile.TemporaryDirectory() as root:
        sample = sample_results.build(root, files=40, errors=4)
        args = ['--results', sample.db_path, '--input', sample.input_dir, '--page_size', '10']
        with dashboard(args, os.path.join(root, 'dashboard.log')) as url, sync_playwright() as p:
            browser = launch_chromium(p)
            page = open_page(browser, url, WIDTH, HEIGHT)
            # Open a chirp (click its row): its sweep reads best in a small picture.
            newest_first = sorted(sample.processed, key=lambda r: r['processed_at'], reverse=True)[:10]
            chirp = next(i for i, r in enumerate(newest_first) if r['label'] == 'chirp')
            settled(page)
            click_grid_row(page, 'files_table', chirp)
            name = os.path.basename(newest_first[chirp]['audio_file'])
            image = page.get_by_role('img', name=f'Spectrogram of input/{name}')
            image.wait_for()
            image.evaluate('img => img.decode()')
            settled(page)
            page.evaluate('window.scrollTo(0, 0)')
            page.evaluate('document.activeElement.blur()')  # no focus ring in the picture
            page.wait_for_timeout(1500)  # let the charts finish their first draw
            os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
            page.screenshot(path=out)
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out', nargs='?', default='docs/dashboard.png')
    take(parser.parse_args().out)


if __name__ == '__main__':
    main()
