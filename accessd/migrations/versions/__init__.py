"""One module per schema revision, applied in order by ``accessd.db.upgrade``."""
