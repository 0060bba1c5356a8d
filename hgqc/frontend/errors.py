"""Errors shared by the frontends."""

from __future__ import annotations


class FrontendError(ValueError):
    """A model cannot be read or lowered into the hgqc IR; the message says which part and why."""
