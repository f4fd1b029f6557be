"""`make ui`'s command line: UI_ARGS adds to the defaults (it used to replace them and drop --input)."""
import subprocess

from tests.app.browser import REPO


def serve_line(*make_args: str) -> str:
    out = subprocess.run(['make', '-n', 'ui', *make_args], cwd=REPO, capture_output=True, text=True, check=True)
    return next(line for line in out.stdout.splitlines() if 'app.serve' in line)


def test_ui_args_override_without_dropping_the_input():
    line = serve_line("UI_ARGS=--results other.db")
    assert '--watch' in line and '--input demo/input' in line
    assert line.rstrip().endswith('--results other.db')  # last wins in argparse


def test_ui_port_and_serving_without_a_pipeline():
    line = serve_line('UI_PORT=9000', 'UI_WATCH=')
    assert '--port 9000' in line and '--watch' not in line
