"""The fan-out engine: freeze a campaign's audience, then claim, send and record in batches.

One module per stage; a stage imports only ``context`` and the stages above it in this list (see
docs/architecture.md for the whole flow of a send). ``context`` holds what the stages pass along: a
claimed row, a batch's send context, and the content as each person gets it.

1. ``freeze`` — one QUEUED Delivery per (campaign, contact) in keyset-paged INSERT … SELECT
   chunks; the cursor moves in the same transaction, so a crash resumes.
2. ``claim`` — lease up to N claimable rows (SKIP LOCKED on PostgreSQL).
3. ``send`` — the legs go out concurrently, each at its slot from the account's global token
   bucket. The delivery UUID is the RBM messageId and the CM reference (+"-sms" for the SMS leg)
   on every attempt, so a retry after a crash or a timeout is deduplicated by the carrier.
   ``failover`` — which gateway each SMS leg goes through (the account's SMS gateway, or its
   backup while that one is down), pinned on the delivery before the send; the switches' audit.
4. ``record`` — results in bulk: sent; not reachable → SMS now; retryable → back off (the lease);
   permanent → failed. Counter deltas go in with the same transaction.
5. ``dispatch`` — a task's unit of work: one batch of a campaign (or the priority lane's single
   messages) through claim, channel decision, send and record. Before anything is sent, each fresh
   row's channel is decided and written — RCS if the number is RCS-capable, otherwise SMS with a
   fallback reason — so a re-claim after a crash can never switch a row to the other channel.
6. ``sweep`` — RCS accepted but not delivered within the TTL is revoked; only a confirmed revoke
   (or a TTL_EXPIRATION_REVOKED event) marks it ``pending_fallback`` for the SMS leg. Never both.
   Dead dispatch chains are restarted and a cancelled campaign's rest is cancelled.

Run control (launch, start, pause, resume, cancel, schedules) is ``messaging.runs``; the Celery
tasks that drive these stages are ``messaging.tasks``.
"""
