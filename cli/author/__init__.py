"""The Promise author's commands: scaffold, update and build a Promise (`scaffold.py`), and run its pipelines on this
machine with no platform (`pipelines.py`)."""
