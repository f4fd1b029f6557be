"""Process handling of the stack: stopped by pid (with children), bounded waits, clear start-up failures."""
import os
import sys

import pytest

from stack import processes


def test_stop_ends_the_process_and_the_children_it_started(tmp_path):
    child_file = tmp_path / 'child.pid'
    # Like `gcloud ... pubsub start`, which runs the emulator as a child java process.
    proc = processes.spawn(['bash', '-c', 'sleep 300 & echo $! > "$0"; wait', str(child_file)], str(tmp_path / 'log'))
    processes.wait_until_ready('parent', proc.pid, lambda: child_file.exists() and child_file.read_text().strip(),
                               str(tmp_path / 'log'), timeout=30)
    child = int(child_file.read_text())
    assert processes.stop(proc.pid, timeout=10) is True
    assert not processes.is_alive(proc.pid)
    assert _gone(child)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f'/proc/{pid}/stat') as f:  # killed, but not yet reaped by PID 1
        return f.read().rsplit(')', 1)[1].split()[0] == 'Z'


def test_a_process_that_ignores_sigterm_is_killed(tmp_path):
    code = ('import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print("up", flush=True); '
            'time.sleep(300)')
    log = tmp_path / 'log'
    proc = processes.spawn([sys.executable, '-c', code], str(log))
    processes.wait_until_ready('stubborn', proc.pid, lambda: 'up' in log.read_text(), str(log), timeout=30)
    assert processes.stop(proc.pid, timeout=1) is False
    assert not processes.is_alive(proc.pid)


def test_start_up_failure_reports_the_log(tmp_path):
    log = tmp_path / 'log'
    proc = processes.spawn([sys.executable, '-c', 'print("port already in use"); raise SystemExit(3)'], str(log))
    with pytest.raises(processes.StackError, match='port already in use'):
        processes.wait_until_ready('broken', proc.pid, lambda: False, str(log), timeout=30)


def test_waiting_is_bounded(tmp_path):
    log = tmp_path / 'log'
    proc = processes.spawn([sys.executable, '-c', 'import time; time.sleep(300)'], str(log))
    try:
        with pytest.raises(processes.StackError, match='not ready after'):
            processes.wait_until_ready('slow', proc.pid, lambda: False, str(log), timeout=0.5)
    finally:
        processes.stop(proc.pid)


def test_a_free_port_is_drawn_below_the_kernels_ephemeral_range_and_binds():
    import socket

    port = processes.free_port()
    assert processes.FREE_PORTS_FROM <= port < processes._ephemeral_low()
    with socket.socket() as s:
        s.bind(('127.0.0.1', port))


def test_listens_on_tells_the_process_that_bound_a_port_from_another(tmp_path):
    port = processes.free_port()
    log = str(tmp_path / 'server.log')
    proc = processes.spawn([sys.executable, '-m', 'http.server', '--bind', '127.0.0.1', str(port)], log)
    try:
        processes.wait_until_ready('http.server', proc.pid, processes.http_ready(f'http://127.0.0.1:{port}/'), log,
                                   port=port)
        assert processes.listens_on(proc.pid, port) is True
        assert processes.listens_on(os.getpid(), port) is False
    finally:
        processes.stop(proc.pid)
