"""Usage captured from tools a platform already runs (OpenTelemetry GenAI spans, LiteLLM's
logging callback), mapped to the event contract of :mod:`tokenledger.events`."""
