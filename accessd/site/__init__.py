"""A site: many doors on one PostgreSQL, each deciding offline (``[site] snapshot`` set).

- ``snapshot``: ``Snapshot``, the door's local SQLite copy of what it decides with (``SLICES``),
  refreshed when ``site_version`` moves, refused past ``max_staleness``; PIN failures per door;
- ``spool``: ``EventSpool``, every event of the door, numbered (``door_seq``) and hash-chained
  per customer and door, until delivered;
- ``ingest``: the database's side: events stored exactly once, in order, every link checked;
- ``sync``: ``SiteSync``, the door's thread that delivers the spool and refreshes the snapshot
  (LISTEN as a wake-up, a poll as fallback);
- ``door``: what the daemon uses in site mode (``SpoolRecorder``, ``open_site_door``);
- ``roles``: a PostgreSQL role per door (``accessd site add-door-role``).
"""
