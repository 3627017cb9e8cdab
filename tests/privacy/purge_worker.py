"""A purge in a process of its own, so a test can kill it (-9) at a random moment.

``python -m tests.privacy.purge_worker DB_URL KEYRING NOW_ISO BATCH``: prints ``ready`` once
everything is imported and opened (the kill timer starts there), ``done`` when finished.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from accessd.crypto import FileKeyProvider
from accessd.db import create_db_engine, make_sessionmaker
from accessd.privacy.purge import run_due_purges


def main(argv: list[str]) -> int:
    url, keyring, now, batch = argv
    engine = create_db_engine(url)
    sessions = make_sessionmaker(engine)
    provider = FileKeyProvider(Path(keyring))
    with engine.connect():
        pass  # open the file now, not inside the timed part
    print("ready", flush=True)
    run_due_purges(sessions, provider, engine, dt.datetime.fromisoformat(now),
                   batch_size=int(batch))
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
