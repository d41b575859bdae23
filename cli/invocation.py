"""What a `ktx` command runs with: KTX_HOME at once, the full settings only when the command asks for them."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from worker.home import ktx_home

if TYPE_CHECKING:
    from worker.settings import Settings


class Invocation:
    """Most commands only talk to the API and need nothing of the settings but KTX_HOME (where the stack's address
    is kept). Building Settings imports most of the domain, which would double what a `ktx get` costs."""

    def __init__(self) -> None:
        self.home: Path = ktx_home()

    @cached_property
    def settings(self) -> Settings:
        from worker.settings import Settings

        return Settings.from_env()
