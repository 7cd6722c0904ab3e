"""The ``nsynth-live`` command: a thin argparse front over library functions.

Each subcommand lives in its own module of this package with ``register(subparsers)``; heavy
imports (torch, onnxruntime) happen inside the handlers so ``--help`` is instant and host
commands never pull in torch. A :class:`~nsynth_live.errors.UserError` becomes one line on
stderr and exit status 2; a :class:`~nsynth_live.errors.BadValue` from a library function names
the flag that set the value.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from nsynth_live import __version__
from nsynth_live.errors import BadValue, UserError

# Modules that register subcommands, in the order they appear in --help. A module is listed
# here only once its subcommands are implemented.
COMMAND_MODULES = [
    "nsynth_live.cli.dataset",
    "nsynth_live.cli.train",
    "nsynth_live.cli.evaluate",
    "nsynth_live.cli.export",
    "nsynth_live.cli.encode",
    "nsynth_live.cli.presets",
    "nsynth_live.cli.play",
    "nsynth_live.cli.render",
    "nsynth_live.cli.render_bank",
    "nsynth_live.cli.bench",
]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``nsynth-live SUB: error: ...`` and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nsynth-live",
        description="The NSynth WaveNet autoencoder as an instrument: build data, train, export, "
        "play live from MIDI/OSC and render sample banks.",
    )
    parser.add_argument("--version", action="version", version=f"nsynth-live {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def flag_for(parser: argparse.ArgumentParser, dest: str) -> str | None:
    """The first option string of the action that stores ``dest``, in ``parser`` or any of its
    subcommands (None when no flag sets it)."""
    for action in parser._actions:
        if action.dest == dest and action.option_strings:
            return action.option_strings[-1]
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found = flag_for(sub, dest)
                if found:
                    return found
    return None


def _subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except BadValue as err:
        flag = flag_for(_subcommand(parser, args.command), err.name)
        shown = repr(err.value) if isinstance(err.value, str) else str(err.value)
        where = f"{flag} {shown}" if flag else f"{err.name} {err.value!r}"
        print(f"nsynth-live {args.command}: error: {where}: {err.reason}", file=sys.stderr)
        return 2
    except UserError as err:
        print(f"nsynth-live {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nsynth-live {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `nsynth-live dataset info DIR | head`
        sys.stderr.close()
        return 0
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
