"""Errors a user can act on. Each message says what went wrong and what to do."""


class CurateError(Exception):
    """Base class for errors that end a run with a clear message instead of a traceback."""


class ConfigError(CurateError):
    """The pipeline file or a stage's parameters are invalid."""


class SchemaError(CurateError):
    """A stage wrote a table that does not match the schema it declares."""


class InputError(CurateError):
    """An input file cannot be opened or read at all."""


class ResumeError(CurateError):
    """A rerun would mix outputs of two different configurations."""


class ResourceError(CurateError):
    """A task would need more memory than its worker has."""


class InvariantError(CurateError):
    """ingested = curated + dropped does not hold, or a uid appears twice."""


def polars_message(error: Exception) -> str:
    """A polars error as a user needs it: its first line and its suggestion ("Did you mean ...?"),
    without the query plan polars appends."""
    text = str(error).split("\n\nResolved plan")[0].split("\n\nThis error occurred")[0]
    return " ".join(part.strip() for part in text.split("\n\n") if part.strip())
