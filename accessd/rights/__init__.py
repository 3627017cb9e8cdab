"""Data-subject rights (GDPR art. 15-21): what a person may ask of the facility, and its answer.

- ``actions``: erase a person (history anonymised), withdraw consent (templates deleted at
  once; ``preview_withdrawal`` says what would go, for a confirmation), remove one finger,
  restrict and lift a restriction;
- ``export``: everything held on a person or a customer, as JSON and CSV in one zip;
- ``requests``: data-subject requests tracked against their deadlines (in the site's days),
  extensions and outcomes; the overview ``accessd requests`` and the panel list, with whom
  each request is about.
"""
