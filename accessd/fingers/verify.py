"""Code and finger: a person's own templates checked 1:1 on the chip.

For people whose templates the door's sensor does not hold (more people than slots), and for
the second factor at two-factor doors. The template travels to character buffer 2 before the
finger arrives (the person is still moving their hand from the keypad), the capture goes to
buffer 1, and the chip compares the two (Match). No search over the library, so no false
accept growing with its size.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import KeyProvider
from accessd.fingers.sealed import open_sealed
from accessd.models import Customer, DataKey, Finger, Person
from firmware_bridge.errors import NoFingerError, PoorImageError
from firmware_bridge.sensor import CHAR_BUFFER_1, CHAR_BUFFER_2, Sensor


def templates_of(sessions: sessionmaker[Session], provider: KeyProvider,
                 person_id: int) -> list[bytes]:
    """The plaintext templates of ``person_id``'s fingers (none when erased meanwhile)."""
    with sessions() as session:
        rows = session.execute(
            select(Finger, Person, Customer, DataKey)
            .join(Person, Person.id == Finger.person_id)
            .join(Customer, Customer.id == Finger.customer_id)
            .join(DataKey, DataKey.id == Finger.data_key_id)
            .where(Finger.person_id == person_id).order_by(Finger.id)).all()
        return [open_sealed(provider, *row) for row in rows]


def check_one_to_one(sensor: Sensor, templates: list[bytes], *, seconds: float,
                     stopped: Callable[[], bool] = lambda: False,
                     imaged: bool = False) -> bool | None:
    """Wait up to ``seconds`` for a finger and compare it with each of ``templates``.

    :param imaged: the finger is on the glass and imaged already (the sensor keeps the image
        through DownChar: only the character buffers change).

    :returns: True on a match, False when the finger matches none, None when no usable
        finger came in time (or ``stopped`` said to give up).
    """
    if not templates:
        return False
    sensor.send_characteristics(templates[0], CHAR_BUFFER_2)
    if not imaged:
        try:
            sensor.wait_for_finger(seconds)
        except NoFingerError:
            return None
    if stopped():
        return None
    try:
        sensor.capture(CHAR_BUFFER_1)
    except PoorImageError:
        return False
    for n, template in enumerate(templates):
        if n:
            sensor.send_characteristics(template, CHAR_BUFFER_2)
        if sensor.compare() > 0:
            return True
    return False
