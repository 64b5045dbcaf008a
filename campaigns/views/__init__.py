"""The campaign and contact pages, one module per screen.

Campaigns: ``campaign_list``, ``composer`` (with ``preview``, the phone preview it shares with the
campaign page), ``campaign_page`` (the approval workflow) and ``monitor`` (progress, recipients and
run control); ``common`` holds what they share. Contacts: ``contacts``, ``contact_lists``,
``contact_import``, and ``optout`` (the signed opt-out link's page and the consent pages).

Views only parse input, call a service and render; writes go through ``campaigns.services``, ``messaging.runs`` and
``messaging.services``. Every queryset is scoped to the member's organization, so another
organization's ids answer 404.
"""
