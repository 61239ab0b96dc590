"""The ``pipepulse`` command line, on the roof: argument parsing and printing over ``jobs/``.

``cli/main.py`` builds the parser from the command groups in ``cli/commands/`` (one module
each, ``register(subparsers)``, handlers ``(args, settings) -> int``). ``cli/awsenv.py`` points
boto3 at the configured AWS; ``cli/health.py`` is the container's probe.
"""
