"""Development only: what the tests and the demo need and production never does.

- ``devkit.localaws``: a local AWS (moto's server) with stand-ins where moto falls short
  (Cost Explorer) and an HTTP fault injector;
- ``devkit.aws_seed``: Step Functions executions and Glue runs for the demo;
- ``devkit.demo``: the 90-day demo (``pipepulse demo build|up``);
- ``devkit.digest_example``: the example digest and the rows it is made of (the digest tests
  reuse them).

It is installed by ``make install`` (``requirements-dev.txt``, which brings moto) and left out
of the runtime image: nothing but tests, bench and two lazy imports in ``cli/`` import it.
"""
