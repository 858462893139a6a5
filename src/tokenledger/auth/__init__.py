"""Who may do what: API keys (and, with the console, accounts and sessions)."""
