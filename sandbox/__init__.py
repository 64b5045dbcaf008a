"""The sandbox carrier: a local, in-memory stand-in for the RBM platform and CM.com.

It speaks the same wire formats as the real carriers (``rbm`` and ``cm`` adapters), keeps a simulated
handset per phone number with a stable profile, posts signed webhooks back to the console, and has a
loopback-only admin API under ``/_sandbox/`` for tests and benchmarks. Started by
``python manage.py runsandbox``; it never touches the database after start-up.

Modules: ``profiles`` (handset kinds and the stable mix), ``wire`` (request validation for both
formats), ``carrier`` (the simulated network: messages, inboxes, timers, tallies), ``webhooks``
(outbound signed callbacks with hold/release), ``app`` (the ASGI application), ``server`` (uvicorn).
"""
