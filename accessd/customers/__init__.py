"""Customers and their people: contracts, lawful basis, credentials and consent.

- ``contracts``: colocation customers, their contract dates and states, when their purge is due;
- ``people``: a customer's people, their way in (finger, PIN), restriction and consent records;
- ``pins``: keypad PINs: validation, generation, hashing (the door's directory checks them).

Services take a ``Session``, add and flush; the caller (the CLI, the panel) owns the transaction.
Erasing a person and withdrawing consent are subject rights: ``accessd.rights``.
"""
