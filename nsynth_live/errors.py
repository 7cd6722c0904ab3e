"""One exception type for every user-facing failure.

The CLI prints ``str(err)`` as a single line and exits non-zero; the message must name the
file, value or message at fault.
"""


class UserError(Exception):
    """A failure caused by the user's input (a file, a flag, a message), not by a bug."""


class BadValue(UserError):
    """A library function's argument out of range: names the parameter and the value.

    The CLI maps ``name`` (the parameter, spelled as the subcommand's argparse ``dest``) to the
    flag the user typed, so ``play(voices=0)`` reads ``--voices 0: must be at least 1`` there.

    Args:
        name: the parameter at fault.
        value: its value.
        reason: what a good value is.
    """

    def __init__(self, name: str, value: object, reason: str):
        self.name, self.value, self.reason = name, value, reason
        super().__init__(f"{name} {value!r}: {reason}")
