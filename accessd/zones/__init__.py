"""Where doors are and who may use them (issue 13).

- ``schedule``: weekly windows, parsed once into minute intervals (pure; the door's hot path
  checks them);
- ``places``: zones (nested, never in a cycle), each door's zone and authentication mode;
- ``grants``: zones granted to customers and their people, with schedules, holiday closing and
  validity; the site's holidays.

The rule that decides with them lives in ``accessd.door.decision`` (``check_grants``).
This module imports nothing, so that importing one room does not load the others.
"""
