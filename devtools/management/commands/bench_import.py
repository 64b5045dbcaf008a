"""Benchmark the contact import: generate a CP932 CSV of N rows (default 100,000) as Japanese Excel
writes it, import it through the same service the console uses (campaigns.imports), and print one
JSON line: {"rows", "seconds", "rows_per_s", ...}. Runs in a throw-away organization, removed after.
"""

import json
import random
import tempfile
import time
from pathlib import Path

from django.core.files.uploadedfile import UploadedFile
from django.core.management.base import BaseCommand
from django.db import connection

from accounts.models import Organization
from campaigns.imports import import_job_create, import_job_run, import_job_set_mapping
from campaigns.models import ContactList, ListPurpose

SURNAMES = ["山田", "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "中村", "小林", "加藤"]
GIVEN = ["太郎", "花子", "一郎", "陽菜", "蓮", "結衣", "大翔", "さくら", "湊", "美咲"]
RANKS = ["ゴールド", "シルバー", "ブロンズ", "一般"]


def write_csv(path: Path, rows: int, bad_every: int) -> None:
    rng = random.Random(42)
    with path.open("w", encoding="cp932", newline="") as out:
        out.write("電話番号,氏名,会員ランク,店舗,同意日時,同意方法\r\n")
        for index in range(rows):
            prefix = ("090", "080", "070")[index % 3]
            number = f"{prefix}-{1000 + index // 10000:04d}-{index % 10000:04d}"
            if bad_every and index % bad_every == bad_every - 1:
                number = "03-1234-5678" if index % 2 else "abc"
            name = f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}"
            out.write(f"{number},{name},{rng.choice(RANKS)},{rng.randint(1, 120)}号店,2024/04/01 10:00,Webフォーム\r\n")


class Command(BaseCommand):
    help = "Import a generated 100,000-row CP932 CSV through the import service and print a JSON line."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=100_000)
        parser.add_argument("--bad-every", type=int, default=100, help="every Nth row is invalid (0: none)")
        parser.add_argument("--keep", action="store_true", help="keep the benchmark organization")

    def handle(self, *args, rows, bad_every, keep, **options):
        suffix = f"{int(time.time())}-{random.randint(0, 9999)}"
        organization = Organization.objects.create(name=f"bench_import {suffix}", slug=f"bench-import-{suffix}")
        contact_list = ContactList.objects.create(organization=organization, name="bench", purpose=ListPurpose.PROMOTION)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "bench.csv"
                write_csv(path, rows, bad_every)
                size = path.stat().st_size
                started = time.perf_counter()
                with path.open("rb") as handle:
                    uploaded = UploadedFile(handle, name="bench.csv", content_type="text/csv", size=size)
                    job = import_job_create(organization, None, uploaded, contact_list)
                import_job_set_mapping(job, job.mapping, {"wording_version": "bench-v1"})
                job = import_job_run(job)
                seconds = time.perf_counter() - started
            result = {
                "rows": job.processed_rows,
                "seconds": round(seconds, 2),
                "rows_per_s": round(job.processed_rows / seconds) if seconds else None,
                "imported": job.created_count + job.updated_count,
                "refused": job.error_count,
                "status": job.status,
                "encoding": job.encoding,
                "file_bytes": size,
                "database": connection.vendor,
            }
            self.stdout.write(json.dumps(result, ensure_ascii=False))
        finally:
            if not keep:
                for job in organization.import_jobs.all():
                    job.file.delete(save=False)
                organization.delete()
