"""Backups: encrypted copies of the database, and restores that never bring destroyed data back.

- ``archive``: take, verify, list, prune and restore a backup (``accessd backup|restore``);
- ``format``: the file format: a header and authenticated AES-256-GCM chunks, no I/O policy;
- ``replay``: what a restore does to the restored copy before it goes live (the erasure ledger
  checked, then re-applied, consent withdrawals carried over, data keys re-attached).

Nothing here is imported by the door's hot path.
"""
