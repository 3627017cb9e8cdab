"""Privacy figures for ``make bench``: purging a customer (database part, and the sensor
part against its wire floor), exporting a customer's history, and a backup shredded per
customer with its restore."""

from __future__ import annotations

import functools
import time
from pathlib import Path

from sqlalchemy import select

from accessd.db import create_db_engine, make_sessionmaker
from accessd.fingers.library import reconcile_sensor
from accessd.models import Door
from firmware_bridge.zfm_sensor import ZfmSensor
from hardware_sim.port import wire_time
from hardware_sim.sensor import SimulatedSensor
from tests.bench import Row
from tests.bench_door import make_installation
from tests.privacy.bench_backup import BackupFigures


def bench_purge_database(directory: Path) -> Row:
    from tests.privacy.bench_purge import bench_purge

    seconds = bench_purge()
    return Row("purge of a customer with 1,000 persons and 1,000,000 access events, database "
               "part (delete in committed batches, data key last, WAL truncated, certificate)",
               f"{seconds:.1f} s", "< 10 s", seconds < 10)


def bench_purge_sensor(directory: Path, n: int = 1000, baud: int = 57600) -> Row:
    """After the database part, the door reconciles: the purged customer's templates leave
    the sensor. Measured against the wire time of the bytes it takes."""
    _, settings = make_installation(directory, **{"sensor.port": "unused"})
    engine = create_db_engine(settings.database.url)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        session.add(Door(name="main"))
    with sessions() as session:
        door_id = session.scalars(select(Door.id)).one()
    from accessd.crypto import FileKeyProvider

    provider = FileKeyProvider(settings.keys.master_key_file)  # type: ignore[arg-type]
    with SimulatedSensor(link=directory / "sensor", capacity=n, baud=baud) as sim:
        for slot in range(n):
            sim.enrol(f"purged-{slot}", slot)
        sensor = ZfmSensor(sim.path, baud=baud)
        sensor.open()
        before = sensor.bytes_on_wire
        start = time.perf_counter()
        report = reconcile_sensor(sensor, sessions, provider, door_id)
        elapsed = time.perf_counter() - start
        used = sensor.bytes_on_wire - before
        sensor.close()
        assert report.deleted == n and sim.template_count == 0
    engine.dispose()
    floor = wire_time(used, baud)
    return Row(f"purge, sensor part: {n} templates of the purged customer leave the sensor at "
               f"{baud} baud ({used} bytes on the wire: index pages and one ranged delete)",
               f"{elapsed * 1e3:.0f} ms = {elapsed / floor:.2f} x wire floor "
               f"{floor * 1e3:.0f} ms", "figure (ratio to the wire floor)", None)


def bench_export(directory: Path) -> Row:
    from tests.rights.bench_export import bench_export as run

    seconds, peak = run()
    return Row("export of one customer with 1,000,000 access events (zip of JSON and CSV, "
               "streamed)", f"{seconds:.1f} s, peak {peak / 2**20:.0f} MB",
               "peak < 100 MB", peak < 100 * 2**20)


@functools.cache
def _backup_figures() -> BackupFigures:
    from tests.privacy.bench_backup import bench_backup

    return bench_backup()


def bench_backup(directory: Path) -> Row:
    f = _backup_figures()
    ratio = f.backup_s / f.vacuum_s
    return Row(f"backup encrypted per customer and per person, 10,000 persons and 1,000,000 access "
               f"events ({f.database_bytes / 2**20:.0f} MiB database, {f.backup_bytes / 2**20:.0f}"
               f" MiB backup; `--compress`: {f.compressed_s:.1f} s, "
               f"{f.compressed_bytes / 2**20:.0f} MiB), against a plain VACUUM INTO",
               f"{f.backup_s:.1f} s = {ratio:.1f} x VACUUM INTO ({f.vacuum_s:.2f} s; processor "
               f"time {f.backup_cpu_s / f.vacuum_cpu_s:.1f} x), peak "
               f"{f.backup_peak / 2**20:.0f} MB", "<= 3 x, peak < 100 MB",
               ratio <= 3 and f.backup_peak < 100 * 2**20)


def bench_restore(directory: Path) -> Row:
    f = _backup_figures()
    return Row("restore of that backup (sections and person records merged, indexes rebuilt, "
               "ledger re-applied, integrity-checked, swapped in)",
               f"{f.restore_s:.1f} s, peak {f.restore_peak / 2**20:.0f} MB", "figure", None)
