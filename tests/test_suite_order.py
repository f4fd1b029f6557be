"""The order and grouping ``make test`` hands tests to its workers in (tests/conftest.py)."""
import os

from tests.conftest import ONE_WORKER_MODULES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_module_run_on_one_worker_exists():
    # A renamed module would otherwise go out test by test again, its fixtures built once per worker, unnoticed.
    assert [m for m in sorted(ONE_WORKER_MODULES) if not os.path.isfile(os.path.join(ROOT, m))] == []
