"""Errors shared by the frontends."""

from __future__ import annotations

from ..errors import HgqcError


class FrontendError(HgqcError, ValueError):
    """A model cannot be read or lowered into the hgqc IR; the message says which part and why."""
