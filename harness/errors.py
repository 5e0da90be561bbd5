"""The one error type for mistakes the user must fix.

The CLI prints a `HarnessError` as one line (no traceback unless `--debug`) and exits with 2.
Everything else is a bug and keeps its traceback.
"""


class HarnessError(Exception):
    """A problem in the user's input: a file, field or value they must fix."""
