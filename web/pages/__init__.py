"""The panel's pages: one module per area, each exporting a blueprint ``bp`` (and ``nav``).

``web.create_app`` registers every module found here. Views parse a form or a query string,
call one service of ``accessd``, and render; the rules live in ``accessd``, and so do the
queries: no module here queries a model (``tests/web/test_views_call_services.py``).
Dates and times are the site's, from ``current_panel().site`` (a ``SiteClock``).

- ``auth``: signing in and out, one's own password and second factor;
- ``customers``: customers, contracts, and the person's page: the hub for everything about a
  person (details, way in, fingers, PIN, consent, restriction, privacy actions, open requests);
- ``person_rights``: what the hub does that destroys or hands over data (remove a finger,
  withdraw consent, erase, export), each after a confirmation page saying what is lost;
- ``enrolment``: enrolling a finger through a door's daemon, and its live progress;
- ``history``: the access history: filters, pages, chart, CSV export;
- ``privacy``: purge schedule and records (found by a customer reference), data-subject
  requests (the person picked by name), the register; old person addresses redirect to the hub;
- ``audit_log``: the staff audit log and the login history;
- ``staff``: staff accounts (admins);
- ``dashboard``, ``doors``: the doors' live state, alarms and remote unlock;
- ``api``: the JSON API under /api/v1.
"""
