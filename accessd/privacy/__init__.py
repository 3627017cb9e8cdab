"""Privacy at contract end and over time: what is destroyed, when, and the proof of it.

- ``purge``: a customer's people, templates, history and data key destroyed once its contract
  ended (plus grace), resumably, certified once every door confirmed its sensor; the purge
  records, the doors they wait for and their checked certificates;
- ``certificate``: the signed purge certificate (what was destroyed where, the customer
  reference's digest, the key's fingerprint) and its check against a trusted key;
- ``ledger``: purge records and erasure-ledger entries, hash-chained and signed; every writer
  appends through it, ``verify-log``, ``doctor`` and restores verify it;
- ``retention``: every category a purge does not cover, deleted once past its period;
- ``scheduler``: one idempotent reconciliation (purge, retention, backups past their age) at
  start and at an interval;
- ``claims``: what accessd states about itself (security measures, what backups hold, what a
  restore does, transfers), EN/NL, each checked against the code by a test;
- ``processing_register``: the register of processing activities (GDPR art. 30(1)), EN/NL;
- ``dpia``: the facts a data-protection impact assessment needs.
"""
