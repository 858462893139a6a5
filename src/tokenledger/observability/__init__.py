"""Running TokenLedger in production: metrics, structured logs, health and readiness.

``metrics`` declares every Prometheus metric (a new one is a line there), ``logs``
writes one JSON line per request and per notable event, ``middleware`` observes each
request for both, and ``health`` says whether the database can serve.
"""
