"""The Promise author's commands: scaffold, update and build a Promise (`scaffold.py`), and run its pipelines on this
machine with no platform (`pipelines.py`)."""


class AuthorError(RuntimeError):
    """A command of the author's refused or failed: its message is the one line `ktx` prints."""
