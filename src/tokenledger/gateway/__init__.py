"""The metering gateway: OpenAI- and Anthropic-compatible routes that forward each AI
request to an upstream the admin configured and record one usage event per request,
through the same write path as ingest (docs/gateway.md)."""
