"""Command groups of the ``pipepulse`` CLI, one module each (see ``cli.main``)."""
