"""`DataError`: input that cannot be prepared, said in one line that names the file and the fix.

It subclasses `ValueError`, so callers that already turn a `ValueError` into one error line (the
trainer, `python -m skipless_data.prepare`) keep doing so.
"""


class DataError(ValueError):
    """The data is not usable text: binary, empty, damaged, or not of the expected layout."""
