"""Remote unlock at the door: the daemon records the reason whole with who asked, and refuses
(door locked) a queued unlock whose reason could not be recorded whole."""

from __future__ import annotations

from accessd.door import command_table
from accessd.door.remote_unlock import ACTOR_MAX, REASON_MAX, request_unlock
from accessd.models import CommandKind, CommandState, DeviceCommand
from tests.daemon.conftest import Door, People, eventually


def finished(door: Door, command_id: int) -> DeviceCommand:
    def done() -> DeviceCommand | None:
        with door.sessions() as session:
            command = session.get_one(DeviceCommand, command_id)
            session.expunge(command)
        return command if command.state in command_table.FINISHED else None

    return eventually(done, what=f"command {command_id} to finish")  # type: ignore[return-value]


def test_the_longest_reason_from_the_longest_name_is_recorded_whole(door: Door,
                                                                     people: People) -> None:
    door.start()
    assert door.daemon is not None
    reason, actor = "r" * REASON_MAX, "s" * ACTOR_MAX
    before = door.last_event_id()
    with door.sessions.begin() as session:
        command_id = request_unlock(session, door.daemon.door_id, reason, actor=actor).id
    assert finished(door, command_id).state is CommandState.DONE
    granted = door.wait_event("granted", after=before)
    assert (granted.method, granted.reason) == ("remote", f"{reason} (by {actor})")


def test_an_unlock_queued_with_a_reason_too_long_to_record_whole_is_refused(
        door: Door, people: People) -> None:
    door.start()
    assert door.daemon is not None
    before = door.last_event_id()
    with door.sessions.begin() as session:  # around the service, as an old panel would
        command_id = command_table.request(session, door.daemon.door_id,
                                           CommandKind.REMOTE_UNLOCK, created_by="ada",
                                           reason="x" * (REASON_MAX + 1)).id
    command = finished(door, command_id)
    assert command.state is CommandState.FAILED
    assert f"at most {REASON_MAX}" in (command.progress or "")
    assert door.rig.door.relay_locked
    assert [e.kind for e in door.events() if e.id > before] == []
