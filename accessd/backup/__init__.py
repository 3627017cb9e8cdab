"""Backups: encrypted copies of the database that a purge or an erasure reaches, and restores
that never bring destroyed data back.

- ``archive``: take, verify and restore a backup (``accessd backup|restore``);
- ``sections``: what a backup holds where: the installation's section, one per customer under
  its key, one sealed record per person under theirs; and how a restore merges them back;
- ``keys``: the backup key file beside the backups, where the keys of live customers and people
  survive a dead SD card and from which destroyed keys are gone (the design is written there);
- ``format``: the file format: a header and sections of authenticated AES-256-GCM chunks;
- ``replay``: what a restore does to the restored copy before it goes live (the ledger
  checked, every ledger's erasures re-applied, consent withdrawals carried over, data keys
  re-attached);
- ``housekeeping``: what the daemon's reconciliation, a purge and ``accessd doctor`` call:
  backups past their age deleted, keys of destroyed subjects dropped, problems named.

Nothing here is imported by the door's hot path.
"""
