"""What the gateway tells the metrics: each answer, and each upstream's latency.

The app passes its :class:`~tokenledger.observability.metrics.Metrics`; tests and a
gateway built without metrics get :class:`Unobserved`.
"""

from __future__ import annotations

from typing import Protocol


class Observer(Protocol):
    def gateway_answered(
        self, *, kind: str, endpoint: str, upstream: str, status: int, error: str
    ) -> None:
        """A gateway request answered ``status`` (``error``: the gateway's error code,
        empty when none; ``upstream``: empty when refused before one was chosen)."""

    def gateway_upstream_answered(self, *, upstream: str, seconds: float) -> None:
        """``upstream`` answered (status and headers) ``seconds`` after the call was sent."""


class Unobserved:
    def gateway_answered(
        self, *, kind: str, endpoint: str, upstream: str, status: int, error: str
    ) -> None:
        pass

    def gateway_upstream_answered(self, *, upstream: str, seconds: float) -> None:
        pass
