"""Kratix's workflow defaults (kratix config `workflows.*`) as platform settings: their defaults are Kratix's, and a
bad value fails the worker at start-up rather than every pipeline."""

from __future__ import annotations

import json

import pytest

from domain.config import PlatformConfig
from domain.pod_fields import KRATIX_DEFAULT_RESOURCES as KRATIX_DEFAULT_CONTAINER_RESOURCES
from worker.main import job_defaults
from worker.settings import Settings


def test_the_defaults_are_kratixs() -> None:
    config = PlatformConfig()
    # api/v1alpha1/pipeline_types.go DefaultResourceRequirements; pull policy and pod TTL unset.
    assert config.default_container_resources == {
        "requests": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "128Mi"},
        "limits": {"cpu": "200m", "memory": "256Mi", "ephemeral-storage": "256Mi"},
    }
    assert config.default_image_pull_policy is None
    assert config.pod_ttl_seconds_after_finished is None
    config.default_container_resources["limits"]["cpu"] = "9"
    assert KRATIX_DEFAULT_CONTAINER_RESOURCES["limits"]["cpu"] == "200m", "each config has its own copy"


def test_the_settings_are_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTX_DEFAULT_IMAGE_PULL_POLICY", "Never")
    monkeypatch.setenv("KTX_DEFAULT_CONTAINER_RESOURCES", json.dumps({"limits": {"cpu": "1", "memory": "512Mi"}}))
    monkeypatch.setenv("KTX_POD_TTL_SECONDS_AFTER_FINISHED", "30")
    platform = Settings.from_env().platform
    assert platform.default_image_pull_policy == "Never"
    assert platform.default_container_resources == {"limits": {"cpu": "1", "memory": "512Mi"}}
    assert platform.pod_ttl_seconds_after_finished == 30
    monkeypatch.setenv("KTX_POD_TTL_SECONDS_AFTER_FINISHED", "0")
    assert Settings.from_env().platform.pod_ttl_seconds_after_finished is None, "Kratix ignores 0 or less"
    for bad in (
        {"limits": {"cpu": "lots"}},
        {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}},
        {"limit": {"cpu": "1"}},
    ):
        monkeypatch.setenv("KTX_DEFAULT_CONTAINER_RESOURCES", json.dumps(bad))
        with pytest.raises(ValueError, match="default_container_resources"):
            Settings.from_env()
    monkeypatch.setenv("KTX_DEFAULT_CONTAINER_RESOURCES", "{}")
    monkeypatch.setenv("KTX_DEFAULT_IMAGE_PULL_POLICY", "Sometimes")
    with pytest.raises(ValueError, match="default_image_pull_policy"):
        Settings.from_env()


def test_kubernetes_jobs_take_them_where_the_defaults_file_is_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTX_DEFAULT_IMAGE_PULL_POLICY", "Always")
    defaults = job_defaults(Settings.from_env())
    assert defaults.image_pull_policy == "Always"
    assert defaults.resources == KRATIX_DEFAULT_CONTAINER_RESOURCES
