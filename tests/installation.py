"""Editing the configuration file that ``accessd init`` wrote, and provisioning the door board's
wire, as an installer would."""

from pathlib import Path

from accessd.cli.main import main as accessd_main
from accessd.config import update_config_file as set_config


def provision_door(config: Path) -> None:
    """``accessd door provision``: the (simulated) board and the keyring get the wire's key."""
    assert accessd_main(["--config", str(config), "door", "provision"]) == 0


__all__ = ["provision_door", "set_config"]
