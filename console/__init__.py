"""Console pages that span the apps: the dashboard, the audit page and the shell's template context.

A plain package, not a Django app: the audit log's model lives in ``audit`` (app label ``console``).
"""
