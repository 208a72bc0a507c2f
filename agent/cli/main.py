"""``secprof`` command line: parsing, dispatch, and the one place errors become exit codes.

Subcommand modules are imported only when their command runs, so ``secprof status`` never pays
for YAML, libseccomp, oras or sigstore.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from agent import __version__
from agent.errors import AgentError, ConfigError, DaemonUnavailable, UsageError

EXIT_OK = 0
EXIT_PROFILE_ERROR = 1  # the command ran; some profile (or input) is in error
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: the daemon cannot be reached
EXIT_SOFTWARE = 70  # EX_SOFTWARE: a bug in secprof
EXIT_CONFIG = 78  # EX_CONFIG

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, hint=f"run '{self.prog} --help'")


def _command(module: str, function: str) -> Handler:
    def run(args: argparse.Namespace) -> int:
        handler: Handler = getattr(importlib.import_module(f"agent.cli.{module}"), function)
        return handler(args)

    return run


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--config", metavar="FILE", help="config file (default: $SECPROF_CONFIG or "
        "/etc/secprof/config.toml; built-in defaults when that does not exist)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")

    parser = _Parser(prog="secprof", description="Keep this host's security profiles in the "
                     "state the desired-state directory says.")
    parser.add_argument("--version", action="version", version=f"secprof {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("apply", parents=[common], help="reconcile once and exit")
    p.add_argument("--once", action="store_true",
                   help="reconcile once and exit (the default; `secprof daemon` keeps going)")
    p.set_defaults(handler=_command("local", "cmd_apply"))

    p = sub.add_parser("plan", parents=[common], help="show what apply would change; "
                       "writes nothing")
    p.set_defaults(handler=_command("local", "cmd_plan"))

    p = sub.add_parser("resolve", parents=[common],
                       help="show a seccomp profile's base chain and merged result")
    p.add_argument("name", metavar="NAME", help="SeccompProfile name")
    p.set_defaults(handler=_command("local", "cmd_resolve"))

    p = sub.add_parser("validate", parents=[common],
                       help="check manifest files or directories without installing anything")
    p.add_argument("paths", metavar="PATH", nargs="+", help="file or directory")
    p.set_defaults(handler=_command("local", "cmd_validate"))
    return parser


def _print_error(error: AgentError) -> None:
    print(f"secprof: error: {error}", file=sys.stderr)
    if error.hint:
        print(f"secprof: hint: {error.hint}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "handler", None):
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        code: int = args.handler(args)
        return code
    except UsageError as exc:
        _print_error(exc)
        return EXIT_USAGE
    except ConfigError as exc:
        _print_error(exc)
        return EXIT_CONFIG
    except DaemonUnavailable as exc:
        _print_error(exc)
        return EXIT_UNAVAILABLE
    except AgentError as exc:
        _print_error(exc)
        return EXIT_PROFILE_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `secprof status | head`: not an error; keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # a bug: say so plainly, keep the traceback for those who ask
        if os.environ.get("SECPROF_DEBUG"):
            raise
        print(f"secprof: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("secprof: hint: this is a bug in secprof; rerun with SECPROF_DEBUG=1 for a "
              "traceback and report it", file=sys.stderr)
        return EXIT_SOFTWARE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
