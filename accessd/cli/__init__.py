"""``accessd``: the command line, one module per area.

- ``main``: the parser, the shared ``Context`` (settings, the site's clock, database, keys
  built on first use) and ``main()``; each area module adds its subcommands with
  ``register(subparsers)``;
- ``door``: init, run, migrate, enroll, status, verify-log, keys, alarm, resync, door, doctor
  (its checks live in ``accessd.doctor``);
- ``people``: customer, person, consent, events;
- ``privacy``: purge, verify-certificate, retention, register, dpia;
- ``rights``: backup, restore, export, erase, withdraw-consent, requests;
- ``staff``: user and token;
- ``progress_bar``: long work's progress on a terminal (rich's bar) or as plain lines.

Handlers parse, call one service of ``accessd``, and print; no rule lives here.
"""
