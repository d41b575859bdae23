"""Continue-as-new that starts the new run with this run's memo.

Temporal gives a new run the memo its command names, and none otherwise: until the new run's first workflow task
upserts it again, the object's memo is empty. Everything that reads an object from visibility reads its memo, so in
that moment a list left the object out, and the catalog read as empty (an apply then found no Promise serving its
kind)."""

from __future__ import annotations

from typing import Any, NoReturn

from temporalio import workflow

from workflows import patches


def continue_as_new(input: Any) -> NoReturn:
    if workflow.patched(patches.MEMO_ACROSS_CONTINUE_AS_NEW):
        workflow.continue_as_new(input, memo=dict(workflow.memo()))
    workflow.continue_as_new(input)
