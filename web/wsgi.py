"""Serving the panel in production with waitress (never Flask's development server).

``accessd web`` calls ``serve(settings)``. Put a TLS proxy (nginx, Caddy) in front, bind the
panel to 127.0.0.1, and pass ``proxy_hops=1`` so the panel sees the client's address and
that the request came over HTTPS (for HSTS, Secure cookies and the audit log).
"""

from __future__ import annotations

import logging

from flask import Flask
from waitress import create_server
from waitress.server import BaseWSGIServer, MultiSocketServer

from accessd.config import Settings
from accessd.metrics import serve as serve_metrics
from web import create_app
from web.metrics import panel_metrics

logger = logging.getLogger(__name__)

DEFAULT_THREADS = 8


def split_bind(bind: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` or ``"[::1]:8080"`` as host and port."""
    host, _, port = bind.rpartition(":")
    return host.strip("[]"), int(port)


def panel_app(settings: Settings, *, insecure_http: bool = False, proxy_hops: int = 0) -> Flask:
    """The panel on the daemon's settings, as production runs it."""
    return create_app(
        {
            "ACCESSD_SETTINGS": settings,
            "ACCESSD_INSECURE_HTTP": insecure_http,
            "ACCESSD_PROXY_HOPS": proxy_hops,
        }
    )


def make_server(
    app: Flask, bind: str, *, threads: int = DEFAULT_THREADS, proxy_hops: int = 0
) -> BaseWSGIServer | MultiSocketServer:
    """A waitress server for ``app`` on ``bind`` (``host:port``; port 0 picks a free one)."""
    host, port = split_bind(bind)
    return create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="",  # no Server header naming the software and its version
        # waitress strips X-Forwarded-* unless told otherwise; the app's ProxyFix, set to
        # the same number of hops, is what decides how many of them to believe.
        clear_untrusted_proxy_headers=proxy_hops == 0,
    )


def serve(
    settings: Settings,
    *,
    insecure_http: bool = False,
    proxy_hops: int = 0,
    threads: int = DEFAULT_THREADS,
) -> None:
    """Serve the panel on ``settings.web.bind`` until interrupted (``accessd web``).

    :param insecure_http: cookies without Secure, for the plain-HTTP demo only.
    :param proxy_hops: reverse proxies in front whose X-Forwarded-For/-Proto to believe.
    """
    app = panel_app(settings, insecure_http=insecure_http, proxy_hops=proxy_hops)
    server = make_server(app, settings.web.bind, threads=threads, proxy_hops=proxy_hops)
    metrics = (serve_metrics(panel_metrics(app).registry, settings.metrics.panel_bind)
               if settings.metrics.enabled else None)
    logger.info("staff panel listening on %s", settings.web.bind)
    try:
        server.run()
    finally:
        if metrics is not None:
            metrics.close()
