"""Contacts, contact lists, consent, campaigns (content, audience, schedule, approval) and stats."""
