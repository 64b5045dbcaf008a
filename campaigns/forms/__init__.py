"""Forms of the campaign and contact pages, one module per kind: the campaign settings
(``campaign``), the rich-content builder (``content_builder``), crontabs (``recurrence``) and the
contact pages (``contacts``)."""
