"""Start the dashboard the way a user does (``python -m app.serve``) and open it in Debian's headless Chromium.

Shared by the browser tests and ``tests/app/screenshot.py``. Every wait is
bounded; the server is stopped by its process id.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Iterator

from stack.processes import free_port

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--no-first-run']
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START_TIMEOUT_S = 90


@contextlib.contextmanager
def dashboard(args: list[str], log_path: str) -> Iterator[str]:
    """Serves the dashboard with ``args`` on a free localhost port; yields its URL; stops it on exit."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
    with open(log_path, 'w') as log:
        proc = subprocess.Popen([sys.executable, '-m', 'app.serve', '--port', str(port), *args], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}'
    try:
        _wait_healthy(url, proc, log_path)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def _wait_healthy(url: str, proc: subprocess.Popen, log_path: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f'dashboard exited with {proc.returncode}:\n{open(log_path).read()}')
        try:
            with urllib.request.urlopen(f'{url}/_stcore/health', timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f'dashboard not healthy after {START_TIMEOUT_S} s:\n{open(log_path).read()}')


def launch_chromium(playwright):
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f'{CHROMIUM} is missing: run `make browser` (installs Debian\'s chromium)')
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def open_page(browser, url: str, width: int = 1400, height: int = 1600):
    """A fresh page (a new Streamlit session) showing the loaded dashboard."""
    page = browser.new_page(viewport={'width': width, 'height': height})
    page.set_default_timeout(30_000)
    page.goto(url)
    page.get_by_test_id('stMetricValue').first.wait_for()
    return page


# st.dataframe draws on a canvas; Streamlit also renders each visible row in an accessible (hidden) table.
ROW_HEIGHT = 35  # the grid's default row height, header included


def grid(page, container_key: str):
    """The st.dataframe inside the ``st.container(key=...)`` of that name."""
    return page.locator(f'.st-key-{container_key} [data-testid="stDataFrame"]')


def grid_rows(page, container_key: str):
    return grid(page, container_key).locator('tbody tr[role="row"]')


def click_grid_row(page, container_key: str, index: int, column_x: float = 10) -> None:
    """Clicks row ``index`` (0-based) where a person would: its selection box at the left edge."""
    canvas = grid(page, container_key).locator('canvas').first
    canvas.wait_for()
    canvas.scroll_into_view_if_needed()  # a mouse click lands only inside the viewport
    box = canvas.bounding_box()
    page.mouse.click(box['x'] + column_x, box['y'] + ROW_HEIGHT * (index + 1) + ROW_HEIGHT / 2)


# Records when Streamlit's script-run state (an attribute of the app's root) last changed; installed once per page.
_WATCH_RUNS = """() => {
  if (window.__runWatch) return;
  const app = document.querySelector('[data-testid="stApp"]');
  window.__lastRunChange = performance.now();
  window.__runWatch = new MutationObserver(() => { window.__lastRunChange = performance.now(); });
  window.__runWatch.observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""
_QUIET = """([since, quiet]) => {
  const app = document.querySelector('[data-testid="stApp"]');
  return app.getAttribute('data-test-script-state') === 'notRunning'
      && performance.now() - Math.max(since, window.__lastRunChange) >= quiet;
}"""
QUIET_MS = 500   # a click's rerun starts well within this on a busy machine; a settled page has none


def settled(page, timeout_ms: int = 30_000) -> None:
    """Waits until the page's script run is over and no other has started for QUIET_MS, so a click lands on the
    buttons of the finished page, not on ones about to be replaced. (Streamlit's app root carries the run state;
    waiting on it replaces fixed sleeps of 1.5 s per click.)"""
    page.evaluate(_WATCH_RUNS)
    since = page.evaluate('performance.now()')
    page.wait_for_function(_QUIET, arg=[since, QUIET_MS], timeout=timeout_ms, polling=50)


# What the dashboard tests read off the page, and the order it lists rows in.
def metric(page, label: str):
    return page.get_by_test_id('stMetric').filter(has=page.get_by_text(label, exact=True)).get_by_test_id(
        'stMetricValue')


def newest(rows: list[dict]) -> dict:
    return max(rows, key=lambda r: r['processed_at'])


def in_order(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: r['processed_at'], reverse=True)


def heading(page):
    return page.locator('h4')


def click(page, name: str) -> None:
    settled(page)
    page.get_by_role('button', name=name).click()


def click_row(page, table: str, index: int) -> None:
    settled(page)
    click_grid_row(page, table, index)


def shown(row: dict) -> str:
    return 'input/' + os.path.basename(row['audio_file'])  # the page names a file with its folder
