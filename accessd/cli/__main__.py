"""``python -m accessd.cli``: the same as the ``accessd`` command."""

import sys

from accessd.cli.main import main

sys.exit(main())
