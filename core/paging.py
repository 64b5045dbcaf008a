"""Keyset paging: constant time on any page, however many rows there are (an OFFSET would read every
row it skips). ``keyset_page`` pages newest first by id; ``sorted_page`` adds a whitelisted sort, the
total and the page's position for the shared pager (templates/console/_pager.html)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q


def keyset_page(queryset, before: str, size: int) -> tuple[list, bool]:
    """The rows of ``queryset`` (ordered by descending id) below the id ``before`` (ignored unless
    it is a number), at most ``size`` of them, and whether there is a next page."""
    if before.isdigit():
        queryset = queryset.filter(id__lt=int(before))
    page = list(queryset[: size + 1])
    return page[:size], len(page) > size


# ---- Sorted keyset pages with a total and the page's position ("1–50 / 1,009") ----------------------
#
# A list is sorted by one whitelisted key (a field or an annotation that is never NULL), the id
# breaking ties. Moving on is keyset paging with the id of the row at the page's edge as the cursor
# (``?after=<id>``, ``?before=<id>``, ``?page=last``): the edge row's sort value is read back from the
# same queryset, so nothing but an id travels in the URL, and a stale or foreign id is the first page.
# The total is one COUNT of the filtered rows and the position one COUNT of the rows ahead of the page
# (never more than the total); fetching the rows stays constant time on any page.

SORT_PARAM = "sort"
CURSOR_PARAMS = ("after", "before", "page")


@dataclass(frozen=True)
class SortLink:
    """One sortable column header: the link that sorts by it and its state for ``aria-sort``."""

    url: str
    aria: str  # "ascending", "descending" or "none"
    active: bool


@dataclass
class SortedPage:
    """One page of a sorted list, with everything the shared pager partial shows."""

    rows: list
    total: int
    first: int  # 1-based position of the first row; 0 when the page is empty
    last: int
    sort: str  # the sort applied, e.g. "-created"
    sorts: dict[str, SortLink]
    first_url: str | None
    previous_url: str | None
    next_url: str | None
    last_url: str | None
    base_query: str  # the filters and the sort, without a cursor: for forms and polling

    @property
    def is_paged(self) -> bool:
        return bool(self.previous_url or self.next_url)

    def __iter__(self):
        return iter(self.rows)

    def __len__(self):
        return len(self.rows)

    def __bool__(self):
        return bool(self.rows)


def _parse_sort(requested: str, sorts: dict[str, str], default: str) -> tuple[str, bool]:
    """The whitelisted key and whether it is descending; anything unknown is the default sort."""
    descending = requested.startswith("-")
    key = requested[1:] if descending else requested
    if key not in sorts:
        descending = default.startswith("-")
        key = default.lstrip("-")
    return key, descending


def _beyond(field: str, value, pk: int, descending: bool) -> Q:
    """Rows after (value, pk) in the order (field, id), both ascending or both descending."""
    op = "lt" if descending else "gt"
    if field in ("id", "pk"):
        return Q(**{f"pk__{op}": pk})
    # The leading bound (>= or <=) is the same rows, written so an index on the field can seek to it.
    bound = "lte" if descending else "gte"
    return Q(**{f"{field}__{bound}": value}) & (Q(**{f"{field}__{op}": value}) | Q(**{f"pk__{op}": pk}))


def _query(params, **changes) -> str:
    query = params.copy()
    for name in CURSOR_PARAMS:
        query.pop(name, None)
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"


def sorted_page(queryset, params, *, sorts: dict[str, str], default: str, size: int) -> SortedPage:
    """The page of ``queryset`` that the request's ``params`` (a QueryDict) ask for.

    ``sorts`` maps the keys people may sort by to a field or annotation of ``queryset``; ``default``
    is one of them, with "-" for descending. ``?sort=`` takes a key (``-key`` descending); an unknown
    key is ignored, so nothing but the whitelist ever reaches ORDER BY. The other parameters (the
    filters) are kept in every link."""
    key, descending = _parse_sort(params.get(SORT_PARAM, ""), sorts, default)
    field = sorts[key]
    sign = "-" if descending else ""
    ordered = queryset.order_by(f"{sign}{field}", f"{sign}pk")
    reverse = queryset.order_by(f"{'' if descending else '-'}{field}", f"{'' if descending else '-'}pk")
    sort = f"{sign}{key}"
    total = queryset.count()

    def edge(cursor: str):
        if not cursor.isdigit():
            return None
        value = queryset.filter(pk=int(cursor)).values_list(field, flat=True).first()
        return None if value is None else (value, int(cursor))

    after, before = edge(params.get("after", "")), edge(params.get("before", ""))
    if after:
        rows = list(ordered.filter(_beyond(field, *after, descending))[: size + 1])
        more_after, rows = len(rows) > size, rows[:size]
        more_before = True
    elif before:
        rows = list(reverse.filter(_beyond(field, *before, not descending))[: size + 1])
        more_before, rows = len(rows) > size, rows[:size][::-1]
        more_after = True
    elif params.get("page") == "last":
        # The rows a walk from the first page would end with: 1,001–1,009, not 960–1,009.
        rows = list(reverse[: total % size or size])[::-1]
        more_before, more_after = total > len(rows), False
    else:
        rows = list(ordered[: size + 1])
        more_after, rows = len(rows) > size, rows[:size]
        more_before = False

    if not rows:
        first = 0
    elif not more_before:
        first = 1
    elif not more_after:
        first = total - len(rows) + 1
    else:
        head = rows[0]
        value = getattr(head, field) if field not in ("id", "pk") else head.pk
        first = ordered.filter(_beyond(field, value, head.pk, not descending)).count() + 1

    keep = {SORT_PARAM: None if sort == default else sort}
    sort_links = {}
    for name in sorts:
        active = name == key
        target = (name if descending else f"-{name}") if active else name
        sort_links[name] = SortLink(
            url=_query(params, **{SORT_PARAM: None if target == default else target}),
            aria=("descending" if descending else "ascending") if active else "none",
            active=active,
        )
    return SortedPage(
        rows=rows,
        total=total,
        first=first,
        last=first + len(rows) - 1 if rows else 0,
        sort=sort,
        sorts=sort_links,
        first_url=_query(params, **keep) if more_before else None,
        previous_url=_query(params, **keep, before=str(rows[0].pk)) if more_before and rows else None,
        next_url=_query(params, **keep, after=str(rows[-1].pk)) if more_after and rows else None,
        last_url=_query(params, **keep, page="last") if more_after else None,
        base_query=_query(params, **keep)[1:],
    )
