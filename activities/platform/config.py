"""Hands the worker's platform configuration to workflows, which cannot read the environment themselves."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from domain.config import PlatformConfig


class ReadConfigInput(BaseModel):
    pass


class ConfigActivities:
    def __init__(self, config: PlatformConfig):
        self.config = config

    @activity.defn
    async def read_platform_config(self, input: ReadConfigInput) -> PlatformConfig:
        return self.config
