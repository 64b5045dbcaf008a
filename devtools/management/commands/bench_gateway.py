"""``python manage.py bench_gateway``: how fast sends reach the sandbox carrier, raw and through our adapters.

Starts its own sandbox (``runsandbox`` on a free port, no database), then measures in the same run:
- ``raw_sends_per_s``: a bare aiohttp client posting prepared RBM agentMessages;
- ``adapter_sends_per_s``: the same sends through ``RbmGateway.send`` (validation and rendering
  included);
- ``cm_batch_sends_per_s``: SMS through ``CmGateway.send_batch``, 100 messages per request.
Each also with ``cpu``: CPU seconds per 1,000 messages of this process (the client: ``bench``) and
of the sandbox carrier (devtools/cpu.py), so the adapter's own cost shows next to the bare client's.
Prints one JSON line. The sandbox must never be the bottleneck of the fan-out engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid

import aiohttp
from django.core.management.base import BaseCommand

from accounts.models import GatewayAccount
from devtools.cpu import CpuMeter, cpu_report
from devtools.harness import Processes, SandboxAdmin
from messaging.gateways import GatewayError, OutboundMessage, gateway_for
from sandbox.server import event_loop_name

CREDENTIALS = {"agent_id": "bench-agent", "bearer_token": "bench-bearer", "client_token": "bench-client"}
CM_CREDENTIALS = {"product_token": "bench-product", "callback_secret": "bench-secret"}
TEXT = "【デモ商店】ご注文の商品を発送しました。お届け予定日は明日です。"


async def _run_workers(count: int, concurrency: int, one) -> tuple[float, int]:
    """Call ``one(index)`` for every index with ``concurrency`` workers; (seconds, errors)."""
    indexes = iter(range(count))
    errors = 0

    async def worker():
        nonlocal errors
        for index in indexes:
            if not await one(index):
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, errors


class Command(BaseCommand):
    help = "Measure raw and adapter send rates against a sandbox carrier started for the run."

    def add_arguments(self, parser):
        parser.add_argument("--messages", type=int, default=20_000)
        parser.add_argument("--concurrency", type=int, default=64)
        parser.add_argument("--sandbox-url", default="", help="Use this running sandbox instead of starting one.")

    def handle(self, *args, **options):
        if options["sandbox_url"]:
            result = self._bench_against(SandboxAdmin(options["sandbox_url"]), options, CpuMeter({}))
        else:
            # The sandbox reads no database here: this process's environment is all it needs.
            with Processes("bench-gateway", dict(os.environ)) as processes:
                sandbox = processes.sandbox()
                result = self._bench_against(sandbox, options, CpuMeter(processes.pids))
        self.stdout.write(json.dumps(result))

    def _bench_against(self, sandbox: SandboxAdmin, options, meter: CpuMeter) -> dict:
        sandbox.call("POST", "gateways", {"kind": "rbm", "webhook_url": "", **CREDENTIALS})
        sandbox.call("POST", "gateways", {"kind": "cm", "webhook_url": "", **CM_CREDENTIALS})
        sandbox.call("POST", "config", {"profile_mix": {"android_plus_message": 1}, "rate_limit": {"rate": None}})
        return asyncio.run(self.bench(sandbox.url, options["messages"], options["concurrency"], meter))

    async def bench(self, base: str, messages: int, concurrency: int, meter: CpuMeter | None = None) -> dict:
        meter = meter or CpuMeter({})
        cpu = {}
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            raw_body = json.dumps(
                {"contentMessage": {"text": TEXT}, "messageTrafficType": "TRANSACTION"}, ensure_ascii=False
            ).encode()
            headers = {"Authorization": f"Bearer {CREDENTIALS['bearer_token']}", "Content-Type": "application/json"}
            run_id = uuid.uuid4().hex[:8]

            async def raw_send(index: int, prefix: str = "raw") -> bool:
                url = (
                    f"{base}/v1/phones/+8190{index:08d}/agentMessages"
                    f"?messageId={prefix}-{run_id}-{index}&agentId={CREDENTIALS['agent_id']}"
                )
                async with session.post(url, data=raw_body, headers=headers) as response:
                    await response.read()
                    return response.status == 200

            await _run_workers(min(2000, messages), concurrency, lambda i: raw_send(i, "warm"))
            before = meter.sample()
            raw_seconds, raw_errors = await _run_workers(messages, concurrency, raw_send)
            cpu["raw"] = cpu_report(before, meter.sample(), messages, counted=["bench"])

            account = GatewayAccount(kind="rbm", base_url=base, credentials=dict(CREDENTIALS))
            gateway = gateway_for(account)

            async def adapter_send(index: int) -> bool:
                outbound = OutboundMessage(
                    message_id=str(uuid.uuid4()), phone=f"+8180{index:08d}", content={"text": TEXT}
                )
                try:
                    await gateway.send(session, outbound)
                except GatewayError:
                    return False
                return True

            before = meter.sample()
            adapter_seconds, adapter_errors = await _run_workers(messages, concurrency, adapter_send)
            cpu["adapter"] = cpu_report(before, meter.sample(), messages, counted=["bench"])

            cm = gateway_for(GatewayAccount(kind="cm", base_url=base, credentials=dict(CM_CREDENTIALS)))
            batches = max(1, messages // 100)

            async def cm_batch(index: int) -> bool:
                batch = [
                    OutboundMessage(
                        message_id=f"{uuid.uuid4()}-sms", phone=f"+8170{index * 100 + n:08d}", sms_text=TEXT,
                        sms_sender="DEMO",
                    )
                    for n in range(100)
                ]
                results = await cm.send_batch(session, batch)
                return not any(isinstance(r, GatewayError) for r in results)

            before = meter.sample()
            cm_seconds, cm_errors = await _run_workers(batches, min(8, concurrency), cm_batch)
            cpu["cm_batch"] = cpu_report(before, meter.sample(), batches * 100, counted=["bench"])

        return {
            "raw_sends_per_s": round(messages / raw_seconds, 1),
            "adapter_sends_per_s": round(messages / adapter_seconds, 1),
            "cm_batch_sends_per_s": round(batches * 100 / cm_seconds, 1),
            "messages": messages,
            "concurrency": concurrency,
            "raw_errors": raw_errors,
            "adapter_errors": adapter_errors,
            "cm_errors": cm_errors,
            "client": f"aiohttp {aiohttp.__version__}",
            "server": f"uvicorn+httptools ({event_loop_name()})",
            "cpus": os.cpu_count(),
            # CPU seconds per 1,000 messages of this process (the client) and, apart, the sandbox.
            "cpu": cpu,
        }
