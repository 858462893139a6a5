"""Budgets and alerts (docs/budgets.md).

``model``: what a budget is, its local periods and which budgets apply to a person;
``check``: a person's use of each budget now (the check API and the gateway's gate);
``alerts``: threshold crossings recorded exactly once, with their outbox rows;
``delivery``: webhook, Slack and e-mail senders; ``service``: the sender thread.
"""
