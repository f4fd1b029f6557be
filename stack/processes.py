"""Starting and stopping the emulator processes by their own pid, with bounded waits.

Each process is started as the leader of a new session, so its process group id
is its pid: stopping it signals that group, which also reaches the children some
launchers leave behind (``gcloud ... pubsub start`` runs the emulator as a child
``java`` process that survives a plain kill of ``gcloud``).
"""
from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from typing import Callable, Optional

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0


class StackError(RuntimeError):
    """An emulator did not start, or the stack is not in the state a command needs."""


class PortTaken(StackError):
    """An emulator exited at start-up because another process had bound its port first."""


# Where free ports are drawn from: below the kernel's ephemeral range (bind(0) and outgoing connections take
# their ports from it, so a port found free there is soon handed to another process), from FREE_PORTS_FROM up.
FREE_PORTS_FROM = 20000


def _ephemeral_low() -> int:
    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing listens on now, for a server about to start. Drawn at random below the ephemeral range:
    between this call and the server's own bind (a second or two of imports), a port from bind(0) can be given
    to another process, and parallel test workers start servers at the same moments. A server that still
    loses its port exits, and ``wait_until_ready`` says so (``PortTaken``)."""
    low = _ephemeral_low()
    rng = random.Random()
    for _ in range(100) if low - FREE_PORTS_FROM > 1000 else ():
        port = rng.randrange(FREE_PORTS_FROM, low)
        with socket.socket() as s:
            try:
                s.bind(('127.0.0.1', port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _listening_sockets(port: int) -> Optional[set[str]]:
    """Inodes of the sockets listening on ``port`` (TCP, IPv4 or IPv6); None where /proc cannot tell."""
    found, readable = set(), False
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for row in rows:
            fields = row.split()   # sl local_address rem_address st ... inode
            if fields[3] == '0A' and int(fields[1].rsplit(':', 1)[1], 16) == port:   # 0A: LISTEN
                found.add(fields[9])
    return found if readable else None


def listens_on(pid: int, port: int) -> Optional[bool]:
    """Whether a process of the group ``pid`` leads (a spawned emulator and its children) listens on ``port``;
    None where /proc cannot tell. Another server answering on that port is not it."""
    sockets, members = _listening_sockets(port), _group_members(pid)
    if sockets is None or members is None:
        return None
    for member, _ in members:
        try:
            fds = os.listdir(f'/proc/{member}/fd')
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f'/proc/{member}/fd/{fd}')
            except OSError:
                continue
            if target.startswith('socket:[') and target[8:-1] in sockets:
                return True
    return False


def spawn(argv: list[str], log_path: str, env: Optional[dict] = None, append: bool = True) -> subprocess.Popen:
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, 'ab' if append else 'wb') as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is dead but still listed
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:  # not our child: dead if a zombie
        return not _is_zombie(pid)


def _group_members(pgid: int) -> Optional[list[tuple[int, str]]]:
    """(pid, state) of each process in the group, from /proc; None where there is no /proc."""
    if not os.path.isdir('/proc'):
        return None
    members = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                # "pid (comm) state ppid pgrp ...": comm may contain spaces, so split after its ')'.
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            members.append((int(entry), fields[0] if fields[0] != 'Z' or _is_zombie(int(entry)) else 'R'))
    return members


def _is_zombie(pid: int) -> bool:
    """Dead but not reaped. A leader whose main thread ended shows state Z while its other threads still
    run; only when no task is left besides the leader is the process really gone."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
        return state == 'Z' and len(os.listdir(f'/proc/{pid}/task')) <= 1
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies do not count: where PID 1 never reaps
    orphans, a killed emulator's child would otherwise look alive forever)."""
    members = _group_members(pgid)
    if members is not None:
        return any(state != 'Z' for _, state in members)
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def stop(pid: int, timeout: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM to the process group led by ``pid``; SIGKILL after ``timeout`` seconds.

    True when the group ended on SIGTERM (or was already gone), False when it had to be killed.
    """
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return sig == signal.SIGTERM
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            is_alive(pid)  # reaps the leader if it is our child
            if not _group_alive(pid):
                return sig == signal.SIGTERM
            time.sleep(0.1)
    raise StackError(f'process group {pid} survived SIGKILL')


def http_ready(url: str) -> Callable[[], bool]:
    """A readiness check: the URL answers with any HTTP status."""
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
    return check


def log_tail(path: str, chars: int = 3000) -> str:
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - chars))
            return f.read().decode('utf-8', 'replace')
    except OSError:
        return ''


def wait_until_ready(name: str, pid: int, ready: Callable[[], bool], log_path: str,
                     timeout: float = START_TIMEOUT_S, port: Optional[int] = None) -> float:
    """Seconds until ``ready()`` (and, given ``port``, until the process itself listens there: another server
    that took the port would answer too); raises StackError (with the log's tail) if the process dies or times
    out, PortTaken if it died because its port was taken."""
    started = time.monotonic()
    while not (ready() and (port is None or listens_on(pid, port) is not False)):
        if not is_alive(pid):
            tail = log_tail(log_path)
            error = PortTaken if 'address already in use' in tail.lower() else StackError
            raise error(f'{name} emulator exited during start-up; end of {log_path}:\n{tail}')
        if time.monotonic() - started > timeout:
            raise StackError(f'{name} emulator not ready after {timeout:.0f} s; end of {log_path}:\n'
                             f'{log_tail(log_path)}')
        time.sleep(0.2)
    return time.monotonic() - started
