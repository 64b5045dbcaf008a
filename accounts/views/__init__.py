"""Console pages of the organization, one module per screen: ``organization`` (switcher, quiet
hours), ``official_accounts``, ``menu_editor`` (an account's fixed menu), ``members`` (invitations,
roles, deactivation), ``api_keys`` and ``webhooks``.

Every view is guarded by accounts.decorators.member_required and reads through the current
organization, so another organization's ids answer 404 — except ``invitations`` (the e-mailed link,
public), ``sessions`` (the signed-in person's own sessions) and ``passwords`` (change and reset).
"""
