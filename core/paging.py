"""Keyset paging: newest first by id, ``?before=<id>`` for the next page — constant time on any
page, however many rows there are (an OFFSET would read every row it skips)."""

from __future__ import annotations


def keyset_page(queryset, before: str, size: int) -> tuple[list, bool]:
    """The rows of ``queryset`` (ordered by descending id) below the id ``before`` (ignored unless
    it is a number), at most ``size`` of them, and whether there is a next page."""
    if before.isdigit():
        queryset = queryset.filter(id__lt=int(before))
    page = list(queryset[: size + 1])
    return page[:size], len(page) > size
