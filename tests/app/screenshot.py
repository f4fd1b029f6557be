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
from tests.app.browser import dashboard, launch_chromium, open_page

WIDTH, HEIGHT = 1400, 2150


def take(out: str) -> None:
    with tempfile.TemporaryDirectory() as root:
        sample = sample_results.build(root, files=40, errors=4)
        args = ['--results', sample.db_path, '--input', sample.input_dir, '--page_size', '10']
        with dashboard(args, os.path.join(root, 'dashboard.log')) as url, sync_playwright() as p:
            browser = launch_chromium(p)
            page = open_page(browser, url, WIDTH, HEIGHT)
            # Inspect a chirp: its sweep reads best in a small picture.
            page.get_by_test_id('stSelectbox').filter(has_text='Inspect a file').click()
            page.get_by_role('option').filter(has_text='· chirp ·').first.click()
            image = page.get_by_role('img', name='Spectrogram of ').first
            image.wait_for()
            image.evaluate('img => img.decode()')
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
