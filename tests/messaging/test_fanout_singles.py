"""The priority lane sends waiting single messages of an official account together, each with its
own content, and a batch lost with its worker is still sent by the messages' own tasks.

The first test dispatches in-process; the others run a real worker process. Both go to the sandbox
carrier over HTTP.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from core import throttle
from messaging.engine.dispatch import send_single
from messaging.models import Channel, Delivery, DeliveryStatus
from messaging.services import message_send
from tests.accounts.factories import approved_account
from tests.messaging.engine import engine, receiver, wait_until, worker  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

ALERT = "カード{n}の不正利用の疑いがあります。"


def send(engine, phone, n, account=None):  # noqa: F811
    text = ALERT.format(n=n)
    return message_send(organization=engine.organization, official_account=account or engine.account,
                        phone=phone, content={"text": text}, sms_text=text)


def texts_received(sandbox, phone) -> list[str]:
    return [message["text"] for message in sandbox.inbox(phone)]


def test_waiting_messages_of_one_account_go_out_with_the_first_each_with_its_own_content(engine):  # noqa: F811
    engine.sandbox.configure(profile_mix={"android_plus_message": 1})
    phones = [f"+8190{50000000 + i:08d}" for i in range(4)]
    other_account = approved_account(engine.organization, rcs_gateway=engine.rbm, sms_gateway=engine.cm)
    mine = [send(engine, phone, n) for n, phone in enumerate(phones[:3])]
    theirs = send(engine, phones[3], 3, account=other_account)

    assert send_single(mine[1].pk) == "sent"
    sent = dict(Delivery.objects.filter(pk__in=[d.pk for d in mine]).values_list("pk", "status"))
    assert set(sent.values()) == {DeliveryStatus.SENT}
    assert Delivery.objects.get(pk=theirs.pk).status == DeliveryStatus.QUEUED  # another account's batch
    for n, phone in enumerate(phones[:3]):
        engine.sandbox.wait_for(lambda p=phone: engine.sandbox.inbox(p), timeout=5)
        assert texts_received(engine.sandbox, phone) == [ALERT.format(n=n)]
    assert send_single(mine[0].pk) == "nothing"  # its own task comes later and finds it sent
    assert engine.sandbox.inbox(phones[3]) == []


def test_a_batch_lost_with_its_worker_is_sent_when_its_lease_ends(engine, worker):  # noqa: F811
    """Three messages claimed by a task whose worker died (leased, never sent): their own tasks find
    them leased, look again when the lease ends, and send each once."""
    engine.sandbox.configure(profile_mix={"android_plus_message": 1})
    phones = [f"+8190{51000000 + i:08d}" for i in range(3)]
    throttle.cache_capabilities(engine.rbm.pk, dict.fromkeys(phones, True))
    leased_until = timezone.now() + timedelta(seconds=3)
    deliveries = [send(engine, phone, n) for n, phone in enumerate(phones)]  # their tasks wait in the queue
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(
        lease_until=leased_until, attempts=1, channel=Channel.RCS
    )
    worker(queues="priority")

    wait_until(lambda: all(engine.sandbox.inbox(phone) for phone in phones), timeout=30, interval=0.2)
    assert timezone.now() >= leased_until
    for n, phone in enumerate(phones):
        assert [m["count"] for m in engine.sandbox.inbox(phone)] == [1]
        assert texts_received(engine.sandbox, phone) == [ALERT.format(n=n)]
    assert set(Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).values_list("status", flat=True)) <= {
        DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ,
    }


def test_a_message_refused_in_someone_elses_batch_is_tried_again(engine, worker):  # noqa: F811
    engine.sandbox.configure(profile_mix={"android_plus_message": 1}, faults={"fail_next": 1, "error_status": 503})
    phones = [f"+8190{52000000 + i:08d}" for i in range(5)]
    throttle.cache_capabilities(engine.rbm.pk, dict.fromkeys(phones, True))
    deliveries = [send(engine, phone, n) for n, phone in enumerate(phones)]
    worker(queues="priority", concurrency=1)

    wait_until(lambda: all(engine.sandbox.inbox(phone) for phone in phones), timeout=30, interval=0.2)
    for phone in phones:
        assert [m["count"] for m in engine.sandbox.inbox(phone)] == [1]
    assert Delivery.objects.filter(pk__in=[d.pk for d in deliveries], attempts=2).count() == 1
