"""``manage.py sourcescheduler``: rq's cron scheduler, queueing the sync of due sources every few seconds.

One process per deployment (Procfile ``scheduler``); a second one is harmless, as each source is claimed before it
is queued. ``--once`` queues the due sources a single time and exits (for cron-less set-ups and checks).
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand
from rq.cron import CronScheduler

from knowledge.tasks import sync_due_sources
from protostar import queues


class Command(BaseCommand):
    help = "Queue the sync of synced sources when their interval has passed (rq cron scheduler)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="queue the due sources once and exit")

    def handle(self, *args, **options) -> None:
        if options["once"]:
            queued = sync_due_sources()
            self.stdout.write(f"queued {len(queued)} source(s)")
            return
        scheduler = CronScheduler(connection=queues.connection("default"))
        scheduler.register(
            sync_due_sources, "default", interval=settings.SOURCE_SYNC_TICK_SECONDS, job_timeout=300, name="sources"
        )
        scheduler.start()
