import pytest

from campaigns.models import Contact
from core.paging import keyset_page
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
