"""Customers and their people: contracts, lawful basis, credentials and consent.

- ``contracts``: colocation customers, their contract dates and states (in the site's days, from
  a ``SiteClock``), when their purge is due; finding and listing them (``list_customers``,
  ``customer_summary``, ``get_customer``, ``get_customer_by_public_id``, ``customer_names``);
- ``people``: a customer's people, their way in (finger, PIN), restriction and consent records;
  finding and listing them (``list_persons``, ``person_summary``, ``get_person``,
  ``get_person_by_public_id``);
- ``collection``: no personal data collected where it cannot be used: nobody added and no
  finger enrolled once a customer's contract is over (``collection_refusal``);
- ``consent``: when a consent counts (``ACTIVE_CONSENT`` for SQL, ``active_consent``): the one
  rule every module asks;
- ``pins``: keypad PINs: validation, generation, hashing (the door's directory checks them).

Services take a ``Session``, add and flush; the caller (the CLI, the panel) owns the transaction.
Erasing a person and withdrawing consent are subject rights: ``accessd.rights``.
"""
