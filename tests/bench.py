"""``make bench``: speed and memory figures, printed as a table with their targets.

Figures, never unit tests: these machines are shared and noisy, so a target missed here is a
finding to look at, not a red build. Each row: what was measured, the figure, the target, and
the ratio to the physical floor where there is one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from firmware_bridge.zfm_sensor import ZfmSensor
from hardware_sim.port import wire_time
from hardware_sim.sensor import SimulatedSensor


@dataclass
class Row:
    what: str
    figure: str
    target: str
    ok: bool | None = None

    def render(self) -> str:
        mark = {True: "ok", False: "MISSED", None: ""}[self.ok]
        return f"| {self.what} | {self.figure} | {self.target} | {mark} |"


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _sim(directory: Path, **options: object) -> SimulatedSensor:
    sim = SimulatedSensor(link=directory / "sensor", **options)  # type: ignore[arg-type]
    sim.start()
    return sim


# Bytes of the protocol's minimum exchanges (12-byte frame + payload), both directions.
IDENTIFY_BYTES = (11 + 1 + 11 + 1) + (11 + 2 + 11 + 1) + (11 + 6 + 11 + 5)  # GenImg, Img2Tz, Search
TEMPLATE_BYTES = 512


def upload_bytes(packet_size: int = 128) -> int:
    """DownChar + ack, data packets, Store + ack: the minimum to put one template in a slot."""
    packets = -(-TEMPLATE_BYTES // packet_size)
    return (12 + 2 + 11) + (packets * 11 + TEMPLATE_BYTES) + (12 + 4 + 11)


def bench_sensor_round_trip(directory: Path, n: int = 500) -> Row:
    sim = _sim(directory)
    sensor = ZfmSensor(sim.path)
    try:
        sensor.open()
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            sensor.template_count()
            samples.append(time.perf_counter() - start)
    finally:
        sensor.close()
        sim.stop()
    return Row("sensor command round trip through the pty, no timing emulation (p50 / p99)",
               f"{percentile(samples, 50) * 1e3:.2f} ms / {percentile(samples, 99) * 1e3:.2f} ms",
               "figure only")


def bench_identify(directory: Path, baud: int = 57600, image_time: float = 0.3,
                   search_time: float = 0.15, n: int = 20) -> Row:
    sim = _sim(directory, baud=baud, image_time=image_time, search_time=search_time)
    sensor = ZfmSensor(sim.path, baud=baud)
    try:
        sensor.open()
        samples = []
        for i in range(n):
            sim.place(f"bench-finger-{i}")
            sent_before = sensor.bytes_on_wire
            start = time.perf_counter()
            assert sensor.finger_present()
            sensor.capture(1)
            sensor.search()
            samples.append(time.perf_counter() - start)
            wire = sensor.bytes_on_wire - sent_before
            sim.lift()
    finally:
        sensor.close()
        sim.stop()
    floor = wire_time(IDENTIFY_BYTES, baud) + image_time + search_time
    ratio = statistics.median(samples) / floor
    return Row(f"identification (image, convert, search) at {baud} baud, image {image_time} s, "
               f"search {search_time} s; {wire} bytes on the wire (minimum {IDENTIFY_BYTES})",
               f"{statistics.median(samples) * 1e3:.1f} ms = {ratio:.3f} x floor "
               f"{floor * 1e3:.1f} ms", "<= 1.2 x floor", ratio <= 1.2)


def bench_upload(directory: Path, baud: int, n: int = 200) -> Row:
    sim = _sim(directory, baud=baud, capacity=1000)
    sensor = ZfmSensor(sim.path, baud=baud)
    try:
        sensor.open()
        templates = [bytes((i + j) & 0xFF for j in range(TEMPLATE_BYTES)) for i in range(n)]
        start = time.perf_counter()
        for slot, template in enumerate(templates):
            sensor.upload_template(slot, template)
        elapsed = time.perf_counter() - start
        assert sensor.template_count() == n
    finally:
        sensor.close()
        sim.stop()
    floor = wire_time(n * upload_bytes(), baud)
    ratio = elapsed / floor
    return Row(f"upload {n} templates to an empty sensor at {baud} baud",
               f"{elapsed:.2f} s = {ratio:.3f} x wire floor {floor:.2f} s", "<= 1.2 x floor",
               ratio <= 1.2)


def _door_benches() -> list[Callable[[Path], Row]]:
    from tests import bench_door

    return [bench_door.bench_decision, bench_door.bench_finger_to_relay,
            bench_door.bench_memory, lambda d: bench_door.bench_recovery(d, "sensor"),
            lambda d: bench_door.bench_recovery(d, "door"), bench_door.bench_decision_under_lock,
            bench_door.bench_drain, bench_door.bench_wire_cost,
            bench_door.bench_finger_to_relay_wire_timed, bench_door.bench_start_to_decision,
            bench_door.bench_code_and_finger]


def _privacy_benches() -> list[Callable[[Path], Row]]:
    from tests import bench_privacy

    return [bench_privacy.bench_purge_database, bench_privacy.bench_purge_sensor,
            bench_privacy.bench_export, bench_privacy.bench_backup, bench_privacy.bench_restore]


def _site_spool(directory: Path) -> Row:
    from tests.bench_site import bench_spool_after_outage

    return bench_spool_after_outage(directory)


def _site_ten_doors(directory: Path) -> Row:
    from tests.bench_site import bench_ten_doors

    return bench_ten_doors(directory)


def _web_history(directory: Path) -> Row:
    from tests.bench_web import bench_history_page

    result = bench_history_page(directory)
    worst = max(page.p95_ms for page in result.pages)
    figures = "; ".join(f"{p.what}: p50 {p.p50_ms:.0f} / p95 {p.p95_ms:.0f} ms"
                        for p in result.pages)
    return Row(f"access history page over {result.events:,} events (seeded in "
               f"{result.seed_s:.0f} s)", figures, "p95 < 150 ms", worst < 150)


def _web_concurrency(directory: Path) -> Row:
    from tests.bench_web import bench_concurrency

    r = bench_concurrency(directory)
    return Row(f"{r.clients} concurrent signed-in clients on waitress for {r.seconds:.0f} s",
               f"{r.requests_per_s:.1f} requests/s, p95 {r.p95_ms:.0f} ms, {r.errors} errors",
               "no errors", r.errors == 0)


SECTIONS: dict[str, list[Callable[[Path], Row]]] = {
    "hardware": [
        bench_sensor_round_trip,
        bench_identify,
        lambda d: bench_upload(d, 57600),
        lambda d: bench_upload(d, 115200),
    ],
    "door": [lambda d, i=i: _door_benches()[i](d) for i in range(11)],
    "privacy": [lambda d, i=i: _privacy_benches()[i](d) for i in range(5)],
    "web": [_web_history, _web_concurrency],
    "site": [lambda d: _site_spool(d), lambda d: _site_ten_doors(d)],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("sections", nargs="*", help=f"any of {', '.join(SECTIONS)}; default all")
    args = parser.parse_args(argv)
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {list(SECTIONS)}")
    args.sections = args.sections or list(SECTIONS)
    print("| measurement | figure | target | |")
    print("|---|---|---|---|")
    for section in args.sections:
        for bench in SECTIONS[section]:
            with tempfile.TemporaryDirectory(prefix="accessd-bench-") as tmp:
                print(bench(Path(tmp)).render(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
