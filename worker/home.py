"""KTX_HOME: where the embedded stack keeps everything it writes. Its own module because the `ktx` CLI needs only this
of the settings for most commands, and importing worker.settings pulls in most of the domain."""

from __future__ import annotations

import os
from pathlib import Path


def ktx_home() -> Path:
    return Path(os.environ.get("KTX_HOME", Path.home() / ".ktx")).expanduser()
