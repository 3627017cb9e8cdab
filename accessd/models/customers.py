"""A colocation customer and everything held because of its contract.

Everything here belongs to one customer and goes when it is purged: deleting the Customer row
cascades (in the database, not the ORM, so a purge never loads millions of rows) to its
people, fingers, consents, access history and finally its data key.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accessd.models.base import (
    Base,
    UTCDateTime,
    enum_column,
    new_customer_reference,
    new_public_id,
    utcnow,
)
from accessd.models.enums import AuthMode, Credential, FingerLabel, LawfulBasis

MAX_GRACE_DAYS = 90  # the providers' statements promise destruction at most 90 days after the end

door_customers = Table(
    "door_customers",
    Base.metadata,
    Column("door_id", ForeignKey("doors.id", ondelete="CASCADE"), primary_key=True),
    Column("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True),
)
"""Which customers' people a door lets in (the "door allowed" part of a decision)."""


class Customer(Base):
    """A colocation customer: its contract dates and the lawful basis for its biometrics."""

    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint(f"grace_days >= 0 AND grace_days <= {MAX_GRACE_DAYS}", name="grace_days"),
        CheckConstraint(
            "lawful_basis IS NULL OR lawful_basis IN ('consent', 'necessity')", name="lawful_basis"
        ),
        # A necessity claim without a reference to its assessment is no claim at all.
        CheckConstraint(
            "lawful_basis IS NULL OR lawful_basis <> 'necessity' "
            "OR necessity_reference IS NOT NULL",
            name="necessity_reference",
        ),
        CheckConstraint(
            "contract_end IS NULL OR contract_end >= contract_start", name="contract_dates"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_public_id)
    # What the customer holds to recognise its purge certificate (``new_customer_reference``).
    # Nullable and a unique index, not a constraint: SQLite can add neither a NOT NULL column
    # without a default nor a constraint without rebuilding ``customers``, and dropping that
    # table during a rebuild would cascade to every person. Migration 0005 gives every
    # existing customer one; new customers get one here.
    reference: Mapped[str | None] = mapped_column(
        String(29), unique=True, index=True, default=new_customer_reference
    )
    name: Mapped[str] = mapped_column(String(200))
    contract_start: Mapped[dt.date] = mapped_column(Date)
    contract_end: Mapped[dt.date | None] = mapped_column(Date)
    grace_days: Mapped[int] = mapped_column(Integer, default=0)
    # None until recorded: enrolment is refused while it is None (issue 4).
    lawful_basis: Mapped[LawfulBasis | None] = mapped_column(enum_column(LawfulBasis, 16))
    necessity_reference: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    persons: Mapped[list[Person]] = relationship(
        back_populates="customer", passive_deletes=True, order_by="Person.id"
    )
    data_key: Mapped[DataKey | None] = relationship(back_populates="customer", passive_deletes=True)
    doors: Mapped[list[Door]] = relationship(
        secondary=door_customers, back_populates="customers", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<Customer {self.id} {self.public_id}>"


class DataKey(Base):
    """A customer's data key, wrapped by a master key that lives outside the database.

    Deleting this row is crypto-shredding: every copy of the customer's templates (backups
    included) becomes unreadable. Fingers must be gone first (their foreign key has no cascade).
    """

    __tablename__ = "data_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), unique=True
    )
    # Which master key wrapped it: rotation rewraps, and this says which key to unwrap with.
    master_key_id: Mapped[str] = mapped_column(String(64))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)  # nonce || ciphertext || tag
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    rewrapped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    customer: Mapped[Customer] = relationship(back_populates="data_key")


class Person(Base):
    """One of a customer's staff who may enter, and how (finger, PIN or both)."""

    __tablename__ = "persons"
    __table_args__ = (
        # Target of the fingers' composite foreign key, which keeps a finger's customer equal to
        # its person's customer: the template's associated data depends on both.
        UniqueConstraint("id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_public_id)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    notes: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True)
    # Restriction of processing (GDPR art. 18): refused at the door, data kept.
    restricted: Mapped[bool] = mapped_column(default=False)
    restricted_reason: Mapped[str | None] = mapped_column(String(500))
    restricted_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    credential: Mapped[Credential] = mapped_column(
        enum_column(Credential, 16), default=Credential.NONE
    )
    # Keypad entry is "<keypad code>*<PIN>#": the code says whose PIN to check (unique, not
    # secret), so a wrong PIN counts against that person only.
    keypad_code: Mapped[str | None] = mapped_column(String(12), unique=True)
    pin_hash: Mapped[str | None] = mapped_column(String(255))  # argon2id, PHC string
    pin_failures: Mapped[int] = mapped_column(Integer, default=0)
    pin_locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="persons")
    fingers: Mapped[list[Finger]] = relationship(
        back_populates="person", passive_deletes=True, order_by="Finger.id"
    )
    consents: Mapped[list[Consent]] = relationship(
        back_populates="person", passive_deletes=True, order_by="Consent.id"
    )

    def __repr__(self) -> str:
        return f"<Person {self.id} {self.public_id}>"


class Finger(Base):
    """An enrolled finger: its encrypted template and the sensor slot that caches it.

    The ciphertext's associated data binds it to (customer, person, finger) public ids, so a
    ciphertext copied onto another row does not decrypt.
    """

    __tablename__ = "fingers"
    __table_args__ = (
        ForeignKeyConstraint(
            ["person_id", "customer_id"],
            ["persons.id", "persons.customer_id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("person_id", "label"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_public_id)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[int] = mapped_column(index=True)
    label: Mapped[FingerLabel] = mapped_column(enum_column(FingerLabel, 16))
    # The finger's enrolment number, unique across the site. A door's sensor holds the finger
    # at this slot where it fits and is free there, else at a slot of its own; the door's
    # ``SensorSlot`` record says which (the hot path reads it first, this as the fallback).
    sensor_slot: Mapped[int] = mapped_column(Integer, unique=True)
    template_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    template_nonce: Mapped[bytes] = mapped_column(LargeBinary)
    # No cascade: the data key may only go once its ciphertexts are gone (destroyed last).
    data_key_id: Mapped[int] = mapped_column(ForeignKey("data_keys.id"), index=True)
    enrolled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    enrolled_by: Mapped[str | None] = mapped_column(String(64))

    person: Mapped[Person] = relationship(back_populates="fingers")
    data_key: Mapped[DataKey] = relationship()

    def __repr__(self) -> str:
        return f"<Finger {self.id} slot={self.sensor_slot}>"


class Consent(Base):
    """A person's explicit consent to biometric identification, and its withdrawal."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    text_version: Mapped[str] = mapped_column(String(40))
    given_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A username, not a foreign key: the record must outlive the staff account.
    witnessed_by: Mapped[str] = mapped_column(String(64))
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    withdrawal_recorded_by: Mapped[str | None] = mapped_column(String(64))

    person: Mapped[Person] = relationship(back_populates="consents")


class Door(Base):
    """A door with a reader; one daemon drives it, named in its config (``door.name``)."""

    __tablename__ = "doors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    location: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The sensor this door provisioned (``Sensor.identity()``), and one it refused since;
    # ``accessd.door.sensor_identity`` owns both.
    sensor_identity: Mapped[str | None] = mapped_column(String(200))
    sensor_refused: Mapped[str | None] = mapped_column(String(200))
    # The zone it leads into (``accessd.models.zones``); a door in no zone lets nobody in.
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id"), index=True)
    # What the door asks for; finger or PIN was every door's mode before modes existed.
    auth_mode: Mapped[AuthMode] = mapped_column(
        enum_column(AuthMode, 16), default=AuthMode.FINGER_OR_PIN,
        server_default=AuthMode.FINGER_OR_PIN.value)

    customers: Mapped[list[Customer]] = relationship(
        secondary=door_customers, back_populates="doors", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<Door {self.id} {self.name!r}>"
