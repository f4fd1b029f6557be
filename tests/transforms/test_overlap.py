"""transforms/overlap.py: a bundle's files worked on at once, emitted in order with their own windowing."""
import threading
import time

import pytest
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import Timestamp
from apache_beam.utils.windowed_value import PANE_INFO_UNKNOWN, WindowedValue

from transforms.overlap import Overlap, Windowing


class Tracker:
    """Work that takes longer for earlier items (so later ones finish first) and records how many ran at once."""

    def __init__(self, count: int):
        self.count = count
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def work(self, i: int):
        def run():
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
            time.sleep(0.02 * (self.count - i))
            with self.lock:
                self.running -= 1
            return i
        return run


def emit(i):
    yield f'file {i}'
    if i % 3 == 0:
        yield TaggedOutput('failed', f'error {i}')


def windowing(i: int) -> Windowing:
    return Windowing(Timestamp(100 + i), GlobalWindow(), PANE_INFO_UNKNOWN)


def test_outputs_come_in_input_order_each_with_its_own_elements_windowing_and_at_most_the_limit_at_once():
    tracker = Tracker(10)
    overlap = Overlap(limit=3)
    overlap.start()
    out = []
    for i in range(10):
        out += list(overlap.submit(tracker.work(i), emit, windowing(i)))
        emitted = sum(isinstance(o, WindowedValue) for o in out)
        assert emitted == max(0, i + 1 - 3)   # past the limit, the oldest are emitted from process
    out += list(overlap.drain())
    overlap.close()
    main = [o for o in out if isinstance(o, WindowedValue)]
    assert [o.value for o in main] == [f'file {i}' for i in range(10)]
    assert [o.timestamp for o in main] == [Timestamp(100 + i) for i in range(10)]
    assert all(o.windows == (GlobalWindow(),) for o in main)
    failed = [o for o in out if isinstance(o, TaggedOutput)]
    assert [(o.tag, o.value.value, o.value.timestamp) for o in failed] == [
        ('failed', f'error {i}', Timestamp(100 + i)) for i in (0, 3, 6, 9)]
    assert 2 <= tracker.most <= 3


def test_a_file_run_alone_waits_for_those_in_flight_and_keeps_the_order():
    tracker = Tracker(3)
    overlap = Overlap(limit=4)
    overlap.start()
    out = list(overlap.submit(tracker.work(0), emit, windowing(0)))
    out += list(overlap.submit(tracker.work(1), emit, windowing(1)))
    assert out == []
    out += list(overlap.run_alone(lambda: 2, emit, windowing(2)))
    assert tracker.running == 0
    assert [o.value for o in out if isinstance(o, WindowedValue)] == ['file 0', 'file 1', 'file 2']
    assert list(overlap.drain()) == []
    overlap.close()


def test_an_exception_in_the_work_fails_the_bundle_and_the_next_bundle_starts_clean():
    overlap = Overlap(limit=2)
    overlap.start()

    def broken():
        raise RuntimeError('a bug, not a bad file')
    list(overlap.submit(broken, emit, windowing(0)))
    with pytest.raises(RuntimeError, match='a bug'):
        list(overlap.drain())
    list(overlap.submit(lambda: 5, emit, windowing(5)))
    overlap.start()   # the runner retries the bundle: nothing of the failed one is emitted into it
    assert list(overlap.drain()) == []
    overlap.close()
