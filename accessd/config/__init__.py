"""Configuration: one TOML file parsed into a typed, frozen, validated ``Settings``.

``load_settings`` reads the file, applies ``ACCESSD_*`` environment variables and then the
command line's overrides, and refuses unknown keys (with a "did you mean"), wrong types and
out-of-range values, naming the key. ``write_default_config`` writes the commented file
``accessd init`` installs. Uses only the standard library (``tomllib``): cheap to import.
"""

from accessd.config.loader import CONFIG_ENV, DEFAULT_CONFIG_PATH, config_path, load_settings
from accessd.config.settings import (
    DOOR_DRIVERS,
    MASK,
    OPEN_REQUEST_REMINDER_DAYS,
    RETENTION_CATEGORIES,
    SENSOR_DRIVERS,
    AccessSettings,
    BackupSettings,
    ControllerSettings,
    DatabaseSettings,
    DoorSettings,
    EnrollmentSettings,
    KeySettings,
    PurgeSettings,
    RetentionPeriod,
    RetentionSettings,
    SensorSettings,
    Settings,
    WebSettings,
    mask_url,
)
from accessd.config.template import (
    render_default_config,
    update_config_file,
    write_default_config,
)
from accessd.errors import ConfigError

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_PATH",
    "DOOR_DRIVERS",
    "MASK",
    "OPEN_REQUEST_REMINDER_DAYS",
    "RETENTION_CATEGORIES",
    "SENSOR_DRIVERS",
    "AccessSettings",
    "BackupSettings",
    "ConfigError",
    "ControllerSettings",
    "DatabaseSettings",
    "DoorSettings",
    "EnrollmentSettings",
    "KeySettings",
    "PurgeSettings",
    "RetentionPeriod",
    "RetentionSettings",
    "SensorSettings",
    "Settings",
    "WebSettings",
    "config_path",
    "load_settings",
    "mask_url",
    "render_default_config",
    "update_config_file",
    "write_default_config",
]
