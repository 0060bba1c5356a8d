"""User-facing errors: each carries one clear line; the CLI prints it without a traceback."""


class HgqcError(Exception):
    """Base class of every error hgqc reports to users."""


class ProjectError(HgqcError, ValueError):
    """A project folder is missing, incomplete, or would be overwritten."""


class OptionError(HgqcError, ValueError):
    """A compile option with a value of the wrong type or range."""
