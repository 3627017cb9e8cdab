"""The door daemon's Prometheus metrics, served on localhost (``[metrics]`` in the config).

Counters and the latency histogram move on the hot path (a dictionary lookup and an add, under
prometheus_client's own lock); what the database knows (open alarms, pending commands) and the
reserve journal's depth are read when Prometheus scrapes, never on the door's path. Each daemon
has its own registry, so tests may run several in one process; the process's own metrics
(memory, descriptors, CPU) are in it too.

Nothing personal is ever a label: results, rules (the decision's reason code), methods, device
names, alarm kinds and job ids only.

| metric | type | labels |
|---|---|---|
| ``accessd_decisions_total`` | counter | ``result`` (granted/denied/...), ``rule``, ``method`` |
| ``accessd_decision_seconds`` | histogram | ``method``: finger (or last key) to relay |
| ``accessd_device_faults_total`` / ``accessd_device_reconnects_total`` | counter | ``device`` |
| ``accessd_device_connected`` | gauge | ``device`` |
| ``accessd_alarms_raised_total`` | counter | ``kind`` |
| ``accessd_alarms_open`` | gauge | ``kind`` (this door's, read at scrape) |
| ``accessd_commands_pending`` | gauge | this door's unfinished commands |
| ``accessd_spool_depth`` | gauge | events in the reserve journal waiting for the database |
| ``accessd_scheduler_job_runs_total`` | counter | ``job``, ``outcome`` (added by ``accessd run``) |
| ``accessd_scheduler_job_last_success_timestamp_seconds`` | gauge | ``job`` |
| ``accessd_backup_age_seconds`` | gauge | age of the newest backup (added by ``accessd run``) |
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

DECISION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
"""Seconds: the sensor's own image + search is 0.2-1.5 s; the daemon's share is milliseconds."""


class DoorMetrics:
    """One daemon's metrics; ``observe_*`` calls are cheap and thread-safe."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        self.decisions = Counter("accessd_decisions", "Access decisions at this door",
                                 ("result", "rule", "method"), registry=r)
        self.latency = Histogram("accessd_decision_seconds",
                                 "Finger on the glass (or the PIN's last key) to relay, seconds",
                                 ("method",), buckets=DECISION_BUCKETS, registry=r)
        self.faults = Counter("accessd_device_faults", "Device faults (each new one)",
                              ("device",), registry=r)
        self.reconnects = Counter("accessd_device_reconnects",
                                  "Devices that answered again after a fault", ("device",),
                                  registry=r)
        self.alarms = Counter("accessd_alarms_raised", "Alarms raised at this door", ("kind",),
                              registry=r)
        for device in ("sensor", "door board"):  # present from the start, at 0
            self.faults.labels(device)
            self.reconnects.labels(device)

    def decision(self, result: str, rule: str | None, method: str | None) -> None:
        self.decisions.labels(result, rule or "", method or "").inc()

    def add(self, collector: Collector) -> None:
        """Add a collector read at each scrape (database gauges, the scheduler's jobs)."""
        self.registry.register(collector)

    def gauge(self, name: str, documentation: str, read: Callable[[], float | None]) -> None:
        """A gauge whose value ``read`` gives at each scrape (None: no sample)."""
        self.add(_FunctionGauge(name, documentation, read))


class _FunctionGauge(Collector):
    def __init__(self, name: str, documentation: str, read: Callable[[], float | None]) -> None:
        self.name, self.documentation, self.read = name, documentation, read

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterator[Metric]:
        try:
            value = self.read()
        except Exception as exc:  # a scrape never takes anything down
            log.warning("metric %s not read: %s", self.name, exc)
            return
        if value is not None:
            yield GaugeMetricFamily(self.name, self.documentation, value=value)


class LabelledGauges(Collector):
    """Gauges by one label, read at each scrape: ``read`` returns {label value: number}."""

    def __init__(self, name: str, documentation: str, label: str,
                 read: Callable[[], dict[str, float]], *, every: Iterable[str] = ()) -> None:
        self.name, self.documentation, self.label = name, documentation, label
        self.read, self.every = read, tuple(every)

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation, labels=[self.label])]

    def collect(self) -> Iterator[Metric]:
        try:
            values: dict[str, Any] = dict.fromkeys(self.every, 0) | self.read()
        except Exception as exc:
            log.warning("metric %s not read: %s", self.name, exc)
            return
        family = GaugeMetricFamily(self.name, self.documentation, labels=[self.label])
        for key, value in sorted(values.items()):
            family.add_metric([key], value)
        yield family



@dataclass(frozen=True)
class JobRuns:
    """One scheduler job's runs, as ``SchedulerCollector`` reads them."""

    succeeded: int
    failed: int
    last_success: float | None  # seconds since the epoch


class SchedulerCollector(Collector):
    """``accessd_scheduler_job_runs_total{job,outcome}`` and
    ``accessd_scheduler_job_last_success_timestamp_seconds{job}``, from ``read()``."""

    def __init__(self, read: Callable[[], dict[str, JobRuns]]) -> None:
        self.read = read

    def describe(self) -> Iterable[Metric]:
        return list(self._families({}))

    def collect(self) -> Iterator[Metric]:
        try:
            jobs = self.read()
        except Exception as exc:
            log.warning("scheduler metrics not read: %s", exc)
            return
        yield from self._families(jobs)

    @staticmethod
    def _families(jobs: dict[str, JobRuns]) -> Iterator[Metric]:
        runs = CounterMetricFamily("accessd_scheduler_job_runs", "Scheduler job runs",
                                   labels=["job", "outcome"])
        last = GaugeMetricFamily("accessd_scheduler_job_last_success_timestamp_seconds",
                                 "When each scheduler job last succeeded (Unix time)",
                                 labels=["job"])
        for job, stats in sorted(jobs.items()):
            runs.add_metric([job, "success"], stats.succeeded)
            runs.add_metric([job, "failure"], stats.failed)
            if stats.last_success is not None:
                last.add_metric([job], stats.last_success)
        yield runs
        yield last
