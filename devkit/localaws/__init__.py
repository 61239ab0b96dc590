"""A local AWS for the demo and the tests: moto's server, plus stand-ins where moto falls short.

``LocalAWS().start()`` serves, on one free loopback port, moto's HTTP app wrapped by
middlewares (see ``server.py``): a Cost Explorer stand-in that honours the request (moto only
replays queued answers and has no forecast) and an HTTP fault injector (throttling, 5xx, slow
answers, in each protocol's own error encoding), and an STS stand-in that refuses AssumeRole to a
role that does not exist or does not trust the request (``sts.py``). Product code reaches it through
``AWS_ENDPOINT_URL`` exactly as it would reach AWS.
"""

from devkit.localaws.server import LocalAWS

__all__ = ["LocalAWS"]
