"""pipepulse's bundled reference pipeline: a small DAG that behaves like a real AWS pipeline.

It reads CSV / JSON-lines files from S3 or a folder, validates, transforms and loads them, and
emits what a real pipeline emits: run and step state into its own ledger (``pipeline.ledger``),
CloudWatch metrics and logs, and a cost per run. ``pipeline.backfill`` runs months of history on a
simulated clock for the demo, with a FOCUS cost export of the demo account.

It imports nothing of pipepulse but the floor (``pipepulse.errors``, ``settings``, ``cron``,
``vocab``, ``retries``) and ``store.ledger`` (its ledger's SQL): it is a stand-in for the
pipelines pipepulse watches, not part of pipepulse (docs/architecture.md).

Modules: ``states`` (state machine), ``ledger``, ``dag`` (executor, retries), ``records``
(parse/validate/transform), ``storage`` (S3 or folder, atomic writes), ``emit`` (metrics, logs),
``cost``, ``run`` (one run), ``triggers`` (cron, interval, file arrival, manual; the scheduler
loop), ``focus`` (cost export), ``backfill``, ``config`` (``[pipeline]`` section, profiles).
"""
