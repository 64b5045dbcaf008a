"""The beat scheduler: django-celery-beat's database scheduler that also records a heartbeat, so
/readyz can tell a stopped scheduler from a stopped worker."""

import logging

from django_celery_beat.schedulers import DatabaseScheduler

from messaging.health import BEAT, heartbeat_record

HEARTBEAT_EVERY = 10.0
logger = logging.getLogger(__name__)


class Scheduler(DatabaseScheduler):
    _last_heartbeat = 0.0

    def tick(self, *args, **kwargs):
        now = self.app.now().timestamp()
        if now - self._last_heartbeat >= HEARTBEAT_EVERY:
            try:
                heartbeat_record(BEAT)
                self._last_heartbeat = now
            except Exception:  # the database is down: /readyz says so itself; beat keeps ticking
                logger.exception("beat heartbeat not recorded")
        interval = super().tick(*args, **kwargs)
        return min(interval, HEARTBEAT_EVERY)
