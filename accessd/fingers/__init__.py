"""Fingerprints: enrolling a finger, sealing its template, and keeping each sensor in step.

- ``enrolment``: the captures on the sensor, the checks (consent, capacity, a known finger) and
  the stored, sealed template; what the panel needs to ask for one (``consent_needed``,
  ``early_refusal``, ``enrolment_doors``, ``enrolment_command``); no enrolment at a door whose
  tamper alarm is open (``door_refusal``: its sensor may be compromised);
- ``sealed``: templates at rest, AES-256-GCM under the customer's data key, bound to their row;
- ``library``: ``reconcile_sensor``: a door's sensor library is a cache of the database, by
  the per-door record of which finger sits in which slot; it holds the people allowed at its
  door (``wanted_library``: finger-only first, then the most frequent, when they do not fit);
- ``verify``: code and finger: a person's own templates checked 1:1 on the chip.

Everything here that touches a sensor runs on the daemon's sensor thread (one owner per sensor).
"""
