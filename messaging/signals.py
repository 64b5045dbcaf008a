"""Signals other parts of the product listen to (outbound webhooks, the inbox, the audit log).

Both are sent inside the transaction that makes the change, so a receiver's own writes commit or
roll back with it; a receiver that enqueues work should do so with ``transaction.on_commit``.
"""

from django.dispatch import Signal

# change: "sent", "delivered", "read", "failed" or "fell_back";
# deliveries: [(delivery id, campaign id or None, channel)] that really changed (each once).
delivery_status_changed = Signal()

# events: [NormalizedEvent] of the inbound kinds (inbound_text, inbound_postback, inbound_location,
# inbound_file), each applied once (the event store deduplicates).
inbound_received = Signal()

# An inbound message stored in its conversation (inside the transaction that stores it), after the
# opt-out and opt-in keywords were acted on: message, conversation, contact, account (the official
# account), handled ("opt_out", "opt_in" or "" when the message was neither keyword).
conversation_message_received = Signal()
