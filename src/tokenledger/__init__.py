"""TokenLedger: exact per-user AI usage for enterprise AI platforms."""

__version__ = "0.1.0"
