"""Runs ``bqemulator`` without its one network step.

At start-up bqemulator installs DuckDB's spatial extension from the internet and
refuses to start without it; it only backs the GEOGRAPHY type, which the result
tables do not use. Here that step is skipped (and the best-effort download of the
Avro extension is turned off by ``BQEMU_ENABLE_FORMAT_EXTENSIONS=false`` in the
environment the stack sets), so the emulator starts offline.

    python -m stack.bqemulator_offline start --rest-port 9050 --data-dir DIR ...
"""
import sys

from bqemulator.cli import main
from bqemulator.storage import engine


def _no_spatial(self) -> None:
    """GEOGRAPHY columns and ST_* functions are unavailable; nothing else changes."""


if __name__ == '__main__':
    engine.DuckDBEngine._load_spatial = _no_spatial
    sys.argv = ['bqemulator'] + sys.argv[1:]
    main()
