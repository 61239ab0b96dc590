"""``python -m cli ...`` runs the ``pipepulse`` command."""

import sys

from cli.main import main

sys.exit(main())
