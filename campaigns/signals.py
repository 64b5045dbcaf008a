"""Signals the campaigns app sends for other apps to act on (campaigns never imports them).

Sent inside the transaction that makes the change, so a receiver's own writes commit or roll back
with it; a receiver that enqueues work should do so with ``transaction.on_commit``.
"""

from django.dispatch import Signal

# Sent by campaigns.optout.contact_opt_out only when that call opted the person out (never for one
# already out), with contact=<Contact>, official_account=<OfficialAccount or None: the account the
# person answered, if any> and confirm=<bool: whether the person should get the confirmation>.
# messaging.inbox sends the confirmation.
contact_opted_out = Signal()

# Sent by campaigns.optout.contact_erase with contact=<Contact>, inside its transaction: each app
# erases the person's data it holds (messaging: the inbox texts, files and locations) and returns a
# dict of what it removed, which goes into the "contact.erased" audit event.
contact_erased = Signal()
