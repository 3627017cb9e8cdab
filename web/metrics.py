"""The panel's Prometheus metrics: requests by endpoint, method and status, and their latency.

Served by ``accessd web`` on its own port (``[metrics] panel_bind``, localhost by default), not
as a route of the panel: every panel route is behind a login, and a scrape needs none. Labels
are Flask endpoint names (``customers.detail``), never paths: a path holds ids, and a
scanner's random URLs would make a label for each.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.process_collector import ProcessCollector

log = logging.getLogger(__name__)

EXTENSION = "accessd_metrics"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class PanelMetrics:
    """One panel's registry and its request metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self.requests = Counter("accessd_panel_requests", "Panel requests answered",
                                ("endpoint", "method", "status"), registry=self.registry)
        self.latency = Histogram("accessd_panel_request_seconds",
                                 "Time to answer a panel request, seconds", ("endpoint",),
                                 buckets=BUCKETS, registry=self.registry)


def init_metrics(app: Flask) -> PanelMetrics:
    """Count every request ``app`` answers (``app.extensions["accessd_metrics"]``)."""
    metrics = PanelMetrics()
    app.extensions[EXTENSION] = metrics

    @app.before_request
    def _started() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _answered(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        rule = request.url_rule
        endpoint = (request.endpoint or "unmatched") if rule is not None else "unmatched"
        metrics.requests.labels(endpoint, request.method, str(response.status_code)).inc()
        elapsed = time.perf_counter() - started if started is not None else None
        if elapsed is not None:
            metrics.latency.labels(endpoint).observe(elapsed)
        # The endpoint, never the path or its query: those may hold what a person typed.
        log.debug("request", extra={"endpoint": endpoint, "method": request.method,
                                    "status": response.status_code,
                                    "ms": round(elapsed * 1000, 1) if elapsed else None})
        return response

    return metrics


def panel_metrics(app: Flask) -> PanelMetrics:
    metrics: PanelMetrics = app.extensions[EXTENSION]
    return metrics
