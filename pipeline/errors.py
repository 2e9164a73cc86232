"""Named exceptions, one per layer; the CLI turns any of them into one clear line."""


class KeaError(Exception):
    """Base for errors the user can act on; the message says what was wrong."""


class ParseError(KeaError):
    """An E-utilities answer is not the XML we expect (truncated, HTML, malformed)."""


class RecordError(ParseError):
    """One record of an answer is unusable (bad or missing PMID): drop it, keep its neighbours."""


class StoreError(KeaError):
    """The database cannot be opened or written; the message names the path."""


class CrawlError(KeaError):
    """The crawl cannot go on: bad query or date, unreachable server, invalid API key."""


class ModelError(KeaError):
    """The classifier model file is missing, unsafe, or from other library versions."""


class ExportError(KeaError):
    """An export was asked for in a format or with filters we cannot honour."""


class LabelValueError(KeaError, ValueError):
    """A label name or value that the registry does not allow (a correction, a gold file)."""
