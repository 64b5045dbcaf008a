"""core.stage_cpu: CPU time by engine stage, off unless STAGE_CPU names the process's role."""

import time

import pytest

from core import stage_cpu


@pytest.fixture
def clean():
    stage_cpu.reset()
    stage_cpu.flush()  # nothing left over from another test
    stage_cpu.reset()
    yield
    stage_cpu.reset()


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_off_records_nothing(settings, clean):
    settings.STAGE_CPU = ""
    with stage_cpu.stage("send"):
        _burn(0.05)
    stage_cpu.flush()

    assert stage_cpu.read() == {}


def test_on_records_the_stage_cpu_by_role(settings, clean):
    settings.STAGE_CPU = "worker"
    with stage_cpu.stage("send"):
        _burn(0.2)
    with stage_cpu.stage("send"):
        time.sleep(0.2)  # waiting is not CPU
    with stage_cpu.stage("record"):
        pass
    stage_cpu.flush()

    found = stage_cpu.read()["worker"]
    assert found["send"]["calls"] == 2
    assert 0.1 <= found["send"]["seconds"] < 0.35
    assert found["record"]["calls"] == 1
