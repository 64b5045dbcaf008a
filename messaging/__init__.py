"""Deliveries, the rich-content schema and its validation, gateways and the sandbox carrier,
fan-out tasks, webhooks in and out, and the inbox."""
