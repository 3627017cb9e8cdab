"""Tests of accessd's foundation: configuration, database engines, models, migrations, crypto."""
