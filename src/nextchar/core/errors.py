"""The one exception type users see: a one-line message that says what is wrong and how to
fix it. The CLI prints it without a traceback; anything else is a bug and keeps its traceback."""


class NextcharError(ValueError):
    """Bad input or configuration, explained in one line."""
