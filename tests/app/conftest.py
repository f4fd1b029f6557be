"""Fixtures shared by the dashboard's browser tests."""
import pytest


@pytest.fixture(scope='module')
def browser():
    """Headless Chromium (Debian's, through Playwright) for one test module; closed after it."""
    playwright_api = pytest.importorskip('playwright.sync_api')
    from tests.app.browser import launch_chromium

    with playwright_api.sync_playwright() as p:
        chromium = launch_chromium(p)
        yield chromium
        chromium.close()
