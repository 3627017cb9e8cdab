"""Editing the configuration file that ``accessd init`` wrote, as an installer would."""

from accessd.config import update_config_file as set_config

__all__ = ["set_config"]
