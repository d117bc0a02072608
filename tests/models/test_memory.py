"""Memory guards: available memory from /proc/meminfo, capped by a cgroup limit."""

from __future__ import annotations

import pytest

from tastespace.errors import ConfigError
from tastespace.models import memory


@pytest.fixture
def fake_proc(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       8000000 kB\nMemAvailable:   4000000 kB\n")
    monkeypatch.setattr(memory, "MEMINFO", meminfo)
    monkeypatch.setattr(memory, "CGROUP_LIMIT", tmp_path / "memory.max")
    monkeypatch.setattr(memory, "CGROUP_USAGE", tmp_path / "memory.current")
    return tmp_path


def test_available_is_memavailable_without_a_cgroup_limit(fake_proc):
    assert memory.available_bytes() == 4_000_000 * 1024
    (fake_proc / "memory.max").write_text("max\n")
    (fake_proc / "memory.current").write_text("123\n")
    assert memory.available_bytes() == 4_000_000 * 1024


def test_a_tighter_cgroup_limit_wins(fake_proc):
    (fake_proc / "memory.max").write_text(f"{3 * 2**30}\n")
    (fake_proc / "memory.current").write_text(f"{2**30}\n")
    assert memory.available_bytes() == 2 * 2**30


def test_unknown_availability_lets_the_fit_go_ahead(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "MEMINFO", tmp_path / "absent")
    assert memory.available_bytes() is None
    memory.require_memory(10**15, "anything", "no advice needed")


@pytest.mark.fault("models", "allocation larger than available memory", "one-line ConfigError")
def test_require_memory_message_names_estimate_and_advice(fake_proc):
    with pytest.raises(ConfigError) as err:
        memory.require_memory(5 * 2**30, "EASE on 40,000 items", "use als")
    assert str(err.value) == (
        "EASE on 40,000 items needs about 5.0 GiB at its peak but 3.8 GiB is available; use als"
    )
