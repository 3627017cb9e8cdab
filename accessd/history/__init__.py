"""The access history: what happened at the doors, append-only and hash-chained.

- ``chain``: recording an event into its chain (one per customer, one for the facility), the
  digests, and ``verify_chains`` (``accessd verify-log``);
- ``query``: reading it for the CLI, the panel and the API: filtered keyset pages, the daily
  chart, the streamed CSV export, the choices of a filter and the doors it can name.

The door's hot path imports ``chain`` only.
"""
