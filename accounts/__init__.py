"""Organizations, members and roles, official accounts (sender identity, carrier review, fixed menu),
gateway accounts and API keys."""
