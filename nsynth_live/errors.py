"""One exception type for every user-facing failure.

The CLI prints ``str(err)`` as a single line and exits non-zero; the message must name the
file, value or message at fault.
"""


class UserError(Exception):
    """A failure caused by the user's input (a file, a flag, a message), not by a bug."""
