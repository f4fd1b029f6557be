"""LocalStack starting an emulator whose port another server took between the choice and the bind."""
import dataclasses
import http.server
import threading

import pytest

from stack import processes
from stack.config import METADATA, StackConfig
from stack.emulators import LocalStack

pytestmark = pytest.mark.e2e


@pytest.fixture
def squatter():
    """A foreign HTTP server on a port, as another test's emulator would be (it answers with an error status)."""
    server = http.server.HTTPServer(('127.0.0.1', processes.free_port()), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_an_emulator_whose_port_was_taken_starts_again_on_another_not_on_the_squatter(tmp_path, squatter,
                                                                                      monkeypatch):
    ports = iter([squatter])
    real_free_port = processes.free_port
    monkeypatch.setattr(processes, 'free_port', lambda: next(ports, None) or real_free_port())
    stack = LocalStack(str(tmp_path / 'stack'), StackConfig().with_free_ports())
    try:
        stack.start_service(METADATA)   # the first try's port answers at once, but not from the emulator
        service = stack.services[METADATA]
        assert service.port != squatter
        assert processes.is_alive(service.pid) and processes.listens_on(service.pid, service.port)
        assert processes.listens_on(service.pid, squatter) is False
    finally:
        stack.stop()


def test_a_restart_on_its_recorded_port_is_not_moved(tmp_path, squatter):
    """A restart keeps its port (its clients are configured with it): a squatter there is an error."""
    config = StackConfig().with_free_ports()
    stack = LocalStack(str(tmp_path / 'stack'), dataclasses.replace(config, metadata_port=squatter))
    with pytest.raises(processes.PortTaken, match='(?i)address already in use'):
        stack.start_service(METADATA)
    stack.stop()
