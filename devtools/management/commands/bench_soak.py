"""Soak the embedded default for N minutes as a shop would use it; prints one JSON line.

``python manage.py bench_soak --minutes 30`` always runs on the embedded default — SQLite and the
filesystem broker — in a fresh ``var/soak/<time>/`` of its own, whatever DATABASE_URL,
CELERY_BROKER_URL and REDIS_URL say, so it never touches the demo's data or a configured server: the
command runs itself again in that environment (devtools/soak.py is the shop it plays). Progress goes
to stderr, the figures to stdout:

- ``first_promotion_sends_per_s``: the first promotion's recipients (``--recipients``, imported just
  before) over the seconds from launch to completion, audience freeze included; the later cycles'
  median and minimum too (their audience grows by ``--new-per-cycle`` minus opt-outs);
- ``receipts_per_s``: webhooks (receipts and replies) the console acknowledged per second of the run;
- ``lost``: messages the console marks sent that no handset of the sandbox received, plus any still
  queued after everything settled; ``duplicated``: handsets that got a message twice or on both
  channels;
- ``restarts``: process restarts by the supervisor; ``memory``: per process of the Procfile (with
  what it forked) the peak resident memory, the figure after the warm-up (5 minutes) and the last.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devtools.soak import Options, ShopSoak

CHILD_FLAG = "BENCH_SOAK_EMBEDDED"
SERVER_SETTINGS = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL")


class Command(BaseCommand):
    help = "Use the embedded default for N minutes as a shop would; print lost, duplicated, restarts, memory."

    def add_arguments(self, parser):
        parser.add_argument("--minutes", type=float, default=30.0)
        parser.add_argument("--cycle-minutes", type=float, default=5.0,
                            help="one import and one promotion per cycle")
        parser.add_argument("--recipients", type=int, default=10_000, help="members imported in the first cycle")
        parser.add_argument("--new-per-cycle", type=int, default=500, help="members imported in each later cycle")
        parser.add_argument("--rate", type=int, default=1_000, help="the gateways' sends per second")
        parser.add_argument("--api-per-second", type=float, default=2.0)
        parser.add_argument("--replies-per-second", type=float, default=1.0)
        parser.add_argument("--var-dir", default="", help="where the run keeps its files (default var/soak/<time>)")

    def handle(self, *args, **options):
        if os.environ.get(CHILD_FLAG) != "1":
            self.stdout.write(self._run_embedded(options))
            return
        if not settings.EMBEDDED or not settings.CELERY_BROKER_URL.startswith("filesystem://"):
            raise CommandError("bench_soak measures the embedded default (SQLite and the filesystem broker).")
        soak_options = Options(**{name: options[name] for name in Options.__dataclass_fields__})
        self.stdout.write(json.dumps(ShopSoak(soak_options).run(), ensure_ascii=False))

    def _run_embedded(self, options) -> str:
        var_dir = Path(options["var_dir"] or Path(settings.BASE_DIR) / "var" / "soak" /
                       datetime.now().strftime("%Y%m%d-%H%M%S"))
        var_dir.mkdir(parents=True, exist_ok=True)
        env = {name: value for name, value in os.environ.items() if name not in SERVER_SETTINGS}
        env.update({CHILD_FLAG: "1", "VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "config.settings",
                    "DEBUG": "1"})
        argv = [sys.executable, "manage.py", "bench_soak", "--var-dir", str(var_dir)]
        for name in ("minutes", "cycle_minutes", "recipients", "new_per_cycle", "rate", "api_per_second",
                     "replies_per_second"):
            argv += [f"--{name.replace('_', '-')}", str(options[name])]
        completed = subprocess.run(argv, cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, check=False)
        if completed.returncode != 0:
            raise CommandError(f"the soak failed (exit {completed.returncode}); its files are in {var_dir}")
        return completed.stdout.decode().strip().splitlines()[-1]
