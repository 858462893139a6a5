"""Usage read from an upstream's answer, by each API's rule.

A meter reads a whole JSON answer (:meth:`Meter.body`) or a stream's events one by one
(:meth:`Meter.event`, which also says whether to pass the event on). The token
arithmetic is ``capture.tokens``' (the same as for OpenTelemetry and LiteLLM):

- Chat Completions, legacy Completions and Embeddings: ``usage`` of the answer, or of a
  stream's usage chunk (the last one, sent when ``stream_options.include_usage``);
- Responses: ``usage`` of the answer, or of the ``response.completed`` (or
  ``.incomplete``, ``.failed``) event's response;
- Anthropic Messages: ``usage`` of the answer; in a stream, ``message_start``'s usage
  updated by each ``message_delta``'s, whose counts are cumulative (so replaced,
  never added).

``complete`` tells whether the final usage arrived; until it does the counts are
what is known so far (an Anthropic stream's input tokens), never a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from tokenledger.capture import tokens
from tokenledger.capture.tokens import Tokens, UsageError
from tokenledger.gateway.sse import Event


class Meter:
    """What one answer said about usage (the Chat Completions rule)."""

    usage_rule: Callable[[Mapping[str, Any]], Tokens] = staticmethod(tokens.openai_chat)

    def __init__(self, *, drop_usage_chunk: bool = False) -> None:
        # Usage was asked of the upstream for us alone: its chunk is not passed on.
        self.drop_usage_chunk = drop_usage_chunk
        self.tokens: Tokens | None = None
        self.complete = False
        self.model: str | None = None
        self.failure: str | None = None  # an error the upstream reported in its answer
        self.problem: str | None = None  # usage the upstream sent that is not usage

    def body(self, body: bytes) -> None:
        document = _json(body)
        if document is None:
            return
        self._model(document.get("model"))
        self._usage(document.get("usage"))

    def event(self, event: Event) -> bool:
        """Read ``event``; whether to pass it on."""
        if event.data.strip() == b"[DONE]":
            return True
        document = _json(event.data)
        if document is None:
            return True
        if document.get("error"):
            self.failure = "upstream_error_event"
        self._model(document.get("model"))
        if isinstance(document.get("usage"), Mapping):
            self._usage(document["usage"])
            return not (self.drop_usage_chunk and not document.get("choices"))
        return True

    def _model(self, value: Any) -> None:
        if self.model is None and isinstance(value, str) and value:
            self.model = value

    def _usage(self, usage: Any) -> None:
        if not isinstance(usage, Mapping):
            return
        try:
            self.tokens = self.usage_rule(usage)
        except UsageError as exc:
            self.problem = str(exc)
            return
        self.complete = True


class ResponsesMeter(Meter):
    """The Responses API."""

    usage_rule = staticmethod(tokens.openai_responses)
    _FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})

    def body(self, body: bytes) -> None:
        super().body(body)
        document = _json(body)
        if document is not None and document.get("status") == "failed":
            self.failure = "upstream_failed"

    def event(self, event: Event) -> bool:
        document = _json(event.data)
        if document is None:
            return True
        kind = document.get("type")
        response = document.get("response")
        if isinstance(response, Mapping):
            self._model(response.get("model"))
            if kind in self._FINAL:
                self._usage(response.get("usage"))
        if kind in {"error", "response.failed"}:
            self.failure = "upstream_error_event"
        return True


class MessagesMeter(Meter):
    """Anthropic's Messages API."""

    usage_rule = staticmethod(tokens.anthropic)

    def __init__(self) -> None:
        super().__init__()
        self._counts: dict[str, Any] = {}

    def event(self, event: Event) -> bool:
        document = _json(event.data)
        if document is None:
            return True
        kind = document.get("type")
        if kind == "message_start" and isinstance(document.get("message"), Mapping):
            message = document["message"]
            self._model(message.get("model"))
            self._update(message.get("usage"))
        elif kind == "message_delta" and isinstance(document.get("usage"), Mapping):
            self._update(document["usage"])
            self.complete = self.problem is None
        elif kind == "error":
            self.failure = "upstream_error_event"
        return True

    def _update(self, usage: Any) -> None:
        """Counts are cumulative: a later value replaces an earlier one."""
        if not isinstance(usage, Mapping):
            return
        self._counts.update({name: value for name, value in usage.items() if value is not None})
        try:
            self.tokens = self.usage_rule(self._counts)
        except UsageError as exc:
            self.problem = str(exc)


def _json(data: bytes) -> dict[str, Any] | None:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None
