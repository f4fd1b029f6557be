"""Where a loop's time goes: seconds accumulated per named step."""
from __future__ import annotations

import contextlib
import time
from collections import Counter
from typing import Iterator


class StepTimes:

    def __init__(self):
        self.seconds: Counter[str] = Counter()

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start

    def reset(self) -> None:
        self.seconds.clear()
