import pytest
from django.http import QueryDict

from campaigns.models import Contact
from core.paging import keyset_page, sorted_page
from tests.accounts.factories import OrganizationFactory


@pytest.mark.django_db
def test_keyset_pages_walk_every_row_once_newest_first():
    organization = OrganizationFactory()
    Contact.objects.bulk_create(
        [Contact(organization=organization, phone=f"+8190{index:08d}") for index in range(7)]
    )
    newest_first = Contact.objects.filter(organization=organization).order_by("-id")
    seen, before, pages = [], "", 0
    while True:
        page, has_next = keyset_page(newest_first, before, 3)
        seen += [contact.id for contact in page]
        pages += 1
        if not has_next:
            break
        before = str(page[-1].id)
    assert pages == 3
    assert seen == list(newest_first.values_list("id", flat=True))


@pytest.mark.django_db
def test_a_before_that_is_not_a_number_is_the_first_page():
    organization = OrganizationFactory()
    Contact.objects.create(organization=organization, phone="+819012345678")
    page, has_next = keyset_page(Contact.objects.filter(organization=organization).order_by("-id"), "1;DROP", 3)
    assert len(page) == 1 and has_next is False


# ---- sorted_page: a whitelisted sort, the total and the page's position -----------------------------

SORTS = {"name": "name", "created": "id"}


def _contacts(names):
    organization = OrganizationFactory()
    Contact.objects.bulk_create(
        [Contact(organization=organization, phone=f"+8190{index:08d}", name=name) for index, name in enumerate(names)]
    )
    return Contact.objects.filter(organization=organization)


def _params(**values):
    query = QueryDict(mutable=True)
    query.update(values)
    return query


def _walk(queryset, params, size):
    """Follow the next links from the page ``params`` asks for; (names, positions) of every page."""
    names, positions = [], []
    while True:
        page = sorted_page(queryset, params, sorts=SORTS, default="-created", size=size)
        names += [contact.name for contact in page]
        positions.append((page.first, page.last, page.total))
        if not page.next_url:
            return names, positions
        params = QueryDict(page.next_url[1:])


@pytest.mark.django_db
def test_sorted_pages_walk_every_row_once_with_ties_broken_by_id_and_say_where_they_are():
    contacts = _contacts(["佐藤", "鈴木", "佐藤", "高橋", "", "佐藤", "田中"])
    names, positions = _walk(contacts, _params(sort="name"), 3)
    assert names == [c.name for c in contacts.order_by("name", "id")]
    assert positions == [(1, 3, 7), (4, 6, 7), (7, 7, 7)]
    names, _ = _walk(contacts, _params(sort="-name", q="kept"), 3)
    assert names == [c.name for c in contacts.order_by("-name", "-id")]


@pytest.mark.django_db
def test_previous_and_last_pages_mirror_the_next_links():
    contacts = _contacts([f"人{index:02d}" for index in range(8)])
    first = sorted_page(contacts, _params(sort="name"), sorts=SORTS, default="-created", size=3)
    assert first.first_url is None and first.previous_url is None
    second = sorted_page(contacts, QueryDict(first.next_url[1:]), sorts=SORTS, default="-created", size=3)
    assert [c.name for c in second] == ["人03", "人04", "人05"] and (second.first, second.last) == (4, 6)
    back = sorted_page(contacts, QueryDict(second.previous_url[1:]), sorts=SORTS, default="-created", size=3)
    assert [c.name for c in back] == ["人00", "人01", "人02"] and back.first == 1 and back.previous_url is None
    last = sorted_page(contacts, QueryDict(first.last_url[1:]), sorts=SORTS, default="-created", size=3)
    assert [c.name for c in last] == ["人06", "人07"] and (last.first, last.last, last.total) == (7, 8, 8)
    assert last.next_url is None and last.last_url is None
    assert "sort=name" in last.first_url and "page=" not in last.first_url


@pytest.mark.django_db
def test_an_unknown_sort_key_never_reaches_order_by_and_the_default_applies():
    contacts = _contacts(["b", "a", "c"])
    for attempt in ("organization__name", "-phone", "name;drop", "__class__", "password"):
        page = sorted_page(contacts, _params(sort=attempt), sorts=SORTS, default="-created", size=10)
        assert page.sort == "-created"
        assert [c.pk for c in page] == list(contacts.order_by("-id").values_list("pk", flat=True))


@pytest.mark.django_db
def test_a_cursor_outside_the_list_or_not_a_number_is_the_first_page():
    mine, other = _contacts(["a", "b", "c"]), _contacts(["x"])
    for cursor in (str(other.get().pk), "1;DROP", "-5", ""):
        page = sorted_page(mine, _params(after=cursor), sorts=SORTS, default="-created", size=2)
        assert page.first == 1 and [c.name for c in page] == ["c", "b"]


@pytest.mark.django_db
def test_sort_links_toggle_the_active_column_and_keep_the_filters():
    contacts = _contacts(["a"])
    page = sorted_page(contacts, _params(sort="name", q="山田", after="5"), sorts=SORTS, default="-created", size=2)
    assert page.sorts["name"].aria == "ascending" and page.sorts["created"].aria == "none"
    assert QueryDict(page.sorts["name"].url[1:]).dict() == {"sort": "-name", "q": "山田"}
    assert QueryDict(page.sorts["created"].url[1:]).dict() == {"sort": "created", "q": "山田"}
    empty = sorted_page(contacts.none(), _params(), sorts=SORTS, default="-created", size=2)
    assert (empty.first, empty.last, empty.total) == (0, 0, 0) and not empty.is_paged
