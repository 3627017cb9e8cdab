"""systemd's notify protocol and watchdog against a real ``NOTIFY_SOCKET`` (issue 14): the daemon
says READY=1 once it decides, pings WATCHDOG=1 while every loop turns, stops pinging when one
loop hangs (so that systemd restarts it), and says STOPPING=1 when it stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from accessd.door.daemon import Daemon
from accessd.door.supervision import Heartbeats, Supervisor
from tests.daemon.conftest import Door, eventually

WATCHDOG_USEC = 1_000_000  # one second: the pings come every third of it


class NotifySocket:
    """systemd's end: a datagram socket that keeps every message the daemon sent."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind("\0" + address[1:] if address.startswith("@") else address)
        self.socket.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []

    def receive(self, seconds: float) -> None:
        """Keep what arrives within ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = self.socket.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def wait_for(self, line: str, timeout: float = 20.0) -> float:
        """When a message holding ``line`` arrived (waiting for it if need be)."""
        deadline = time.monotonic() + timeout
        while True:
            for at, message in self.messages:
                if line in message.splitlines():
                    return at
            assert time.monotonic() < deadline, f"no {line!r} in {self.texts()}"
            self.receive(0.1)

    def texts(self) -> list[str]:
        return [message for _, message in self.messages]

    def pings_after(self, since: float) -> int:
        return sum(1 for at, message in self.messages
                   if at > since and "WATCHDOG=1" in message.splitlines())

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    # A short directory: a Unix socket's path must fit in 108 bytes.
    directory = tempfile.mkdtemp(prefix="accessd-notify-")
    sock = NotifySocket(os.path.join(directory, "notify"))
    try:
        yield sock
    finally:
        sock.close()
        os.unlink(sock.address)
        os.rmdir(directory)


def test_the_service_says_ready_pings_the_watchdog_and_says_stopping(
        door: Door, notify_socket: NotifySocket) -> None:
    """`accessd run` as systemd starts it: a real process, a real socket, the simulator."""
    env = {**os.environ, "NOTIFY_SOCKET": notify_socket.address,
           "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    env.pop("WATCHDOG_PID", None)
    daemon = subprocess.Popen([sys.executable, "-m", "accessd.cli", "--config", str(door.config),
                               "run"], env=env, stderr=subprocess.PIPE)
    try:
        ready_at = notify_socket.wait_for("READY=1")
        ready = next(m for m in notify_socket.texts() if "READY=1" in m.splitlines())
        assert f"MAINPID={daemon.pid}" in ready.splitlines()
        assert any(line.startswith("STATUS=deciding") for line in ready.splitlines())
        # Before READY it said what it was doing.
        assert any(m.startswith("STATUS=starting") for m in notify_socket.texts())
        notify_socket.receive(2.0)
        assert notify_socket.pings_after(ready_at) >= 3, notify_socket.texts()
        daemon.send_signal(signal.SIGTERM)
        notify_socket.wait_for("STOPPING=1")
        assert daemon.wait(timeout=20) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        assert daemon.stderr is not None
        daemon.stderr.close()


def test_the_abstract_namespace_is_honoured(door: Door) -> None:
    """`NOTIFY_SOCKET=@name` is a socket in Linux's abstract namespace, not a file."""
    notify = NotifySocket(f"@accessd-test-{os.getpid()}-{time.monotonic_ns()}")
    try:
        supervisor = Supervisor.from_environ(Heartbeats(), {"NOTIFY_SOCKET": notify.address})
        assert supervisor is not None and supervisor.watchdog_seconds is None
        supervisor.status("hello")
        notify.wait_for("STATUS=hello")
        supervisor.close()
    finally:
        notify.close()


def test_no_watchdog_for_another_process() -> None:
    """$WATCHDOG_PID naming another process: the watchdog is not ours to feed."""
    environ = {"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000",
               "WATCHDOG_PID": str(os.getpid() + 1)}
    supervisor = Supervisor.from_environ(Heartbeats(), environ)
    assert supervisor is not None and supervisor.watchdog_seconds is None
    supervisor.close()
    assert Supervisor.from_environ(Heartbeats(), {}) is None


def _freeze(daemon: Daemon, loop: str, frozen: threading.Event,
            released: threading.Event) -> None:
    """Make one loop's next turn block, as a deadlocked lock or a read without a deadline
    would, until ``released``."""
    step_name = {"sensor": "_sensor_step", "door": "_door_step",
                 "commands": "_poll_commands"}[loop]
    original: Callable[[], None] = getattr(daemon, step_name)

    def step() -> None:
        if frozen.is_set():
            released.wait()
        original()

    setattr(daemon, step_name, step)


@pytest.mark.parametrize("loop", ["sensor", "door", "commands"])
def test_a_hung_loop_stops_the_watchdog_pings(door: Door, notify_socket: NotifySocket,
                                              loop: str) -> None:
    supervisor = Supervisor.from_environ(Heartbeats(), {
        "NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": str(WATCHDOG_USEC)})
    assert supervisor is not None
    frozen, released = threading.Event(), threading.Event()
    door.start_with(supervisor=supervisor,
                    before_run=lambda daemon: _freeze(daemon, loop, frozen, released))
    try:
        ready_at = notify_socket.wait_for("READY=1")
        notify_socket.receive(1.0)
        assert notify_socket.pings_after(ready_at) >= 2

        frozen.set()
        said_at = notify_socket.wait_for(f"STATUS=not responding: {loop} loop")
        notify_socket.receive(2.5)  # more than two intervals: systemd would have killed it
        assert notify_socket.pings_after(said_at) == 0, notify_socket.texts()[-5:]

        released.set()  # the loop turns again: so do the pings
        back = eventually(lambda: notify_socket.receive(0.2) or notify_socket.pings_after(said_at),
                          what="the pings to resume")
        assert back
    finally:
        released.set()
        door.stop()
        supervisor.close()


def test_an_enrolment_waiting_for_a_finger_is_not_a_hung_loop(
        door: Door, notify_socket: NotifySocket) -> None:
    """The sensor loop waits up to the capture timeout for the person at the reader: longer
    than the watchdog's interval here, and the pings go on (no restart mid-enrolment)."""
    from accessd.door import command_table
    from accessd.models import CommandKind, CommandState, DeviceCommand
    from tests.daemon.conftest import add_people

    people = add_people(door)
    supervisor = Supervisor.from_environ(Heartbeats(), {
        "NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": str(WATCHDOG_USEC)})
    assert supervisor is not None
    door.start_with(supervisor=supervisor)
    try:
        notify_socket.wait_for("READY=1")
        assert door.daemon is not None
        with door.sessions.begin() as session:
            command_id = command_table.request(session, door.daemon.door_id, CommandKind.ENROLL,
                                               created_by="test", person_id=people.bob,
                                               finger="right_index", by="alice-staff").id

        def asking() -> bool:
            with door.sessions() as session:
                return (session.get_one(DeviceCommand, command_id).progress or "").startswith(
                    "place")

        eventually(asking, what="the reader to ask for a finger")
        asked_at = time.monotonic()
        notify_socket.receive(3.0)  # three intervals with nobody at the reader
        assert notify_socket.pings_after(asked_at) >= 6, notify_socket.texts()[-5:]
        assert not any("not responding" in m for m in notify_socket.texts())
        with door.sessions() as session:
            assert session.get_one(DeviceCommand, command_id).state is CommandState.RUNNING
    finally:
        door.stop()
        supervisor.close()
