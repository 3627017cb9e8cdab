"""Serving Prometheus metrics: ``serve(registry, "127.0.0.1:9108")`` on a thread of its own.

Used by the door daemon (``accessd.door.metrics``) and the panel (``web.metrics``), each on its
own port from ``[metrics]``. The address is the operator's choice; the default is localhost,
since the numbers tell when doors open and fail (never who).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)


def parse_bind(text: str) -> tuple[str, int]:
    """``"127.0.0.1:9108"`` -> (host, port); ``"[::1]:9108"`` for IPv6.

    :raises ValueError: not host:port with a port from 0 to 65535.
    """
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise ValueError(f"{text!r} is not host:port (e.g. 127.0.0.1:9108)")
    return host.strip("[]"), int(port)


@dataclass
class MetricsServer:
    """A running exposition endpoint; ``close`` stops it."""

    server: WSGIServer
    host: str
    port: int

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve(registry: CollectorRegistry, bind: str) -> MetricsServer | None:
    """Serve ``registry`` at ``http://bind/metrics`` on a thread; None (logged) when the
    address cannot be bound: the door never stops for its metrics.

    :raises ConfigError: ``bind`` is not host:port.
    """
    from prometheus_client import start_http_server

    from accessd.errors import ConfigError

    try:
        host, port = parse_bind(bind)
    except ValueError as exc:
        raise ConfigError(f"[metrics]: {exc}; or set enabled = false") from None
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.error("metrics not served: cannot listen on %s (%s); set [metrics] bind to a free "
                  "address or enabled = false", bind, exc.strerror or exc)
        return None
    actual = server.server_address[1]
    log.info("metrics served at http://%s:%d/metrics", host, actual)
    return MetricsServer(server, host, int(actual))
