"""What runs: each job is ``run(settings, engine, *, now)``, listed once in ``jobs/registry.py``.

``pipepulse schedule`` (``jobs/scheduler.py``) runs the registry's jobs on their cron; the CLI
runs the same functions one at a time (for system cron). A job orchestrates the layers below
it (collectors, alerts, insights, store) and holds no SQL itself.
"""
