"""``secprof`` command line: parsing, dispatch, and the one place errors become exit codes.

Subcommand modules are imported only when their command runs, so ``secprof status`` never pays
for YAML, libseccomp, oras or sigstore.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from agent import __version__
from agent.api.wire import DEFAULT_WAIT_S, MAX_WAIT_S
from agent.codes import Exit, exit_status
from agent.errors import AgentError, UsageError

# The exit codes are defined with the error codes (agent/codes.py); these names are what the
# subcommands return.
EXIT_OK = int(Exit.OK)
EXIT_PROFILE_ERROR = int(Exit.ERROR)  # the command ran; some profile (or input) is in error
EXIT_USAGE = int(Exit.USAGE)
EXIT_SOFTWARE = int(Exit.SOFTWARE)

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, hint=f"run '{self.prog} --help'")


def _command(module: str, function: str) -> Handler:
    def run(args: argparse.Namespace) -> int:
        handler: Handler = getattr(importlib.import_module(f"agent.cli.{module}"), function)
        return handler(args)

    return run


def _wait_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= MAX_WAIT_S:  # also false for nan
        raise argparse.ArgumentTypeError(f"expected seconds in (0, {MAX_WAIT_S:g}], got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--config", metavar="FILE", help="config file (default: $SECPROF_CONFIG or "
        "/etc/secprof/config.toml; built-in defaults when that does not exist)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")
    verbose = _Parser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true",
                         help="every warning and note (by default: a count and the first few "
                         "per profile)")

    parser = _Parser(prog="secprof", description="Keep this host's security profiles in the "
                     "state the desired-state directory says.")
    parser.add_argument("--version", action="version", version=f"secprof {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("apply", parents=[common, verbose], help="reconcile once and exit")
    p.set_defaults(handler=_command("local", "cmd_apply"))

    p = sub.add_parser("plan", parents=[common, verbose], help="show what apply would change; "
                       "writes nothing")
    p.set_defaults(handler=_command("local", "cmd_plan"))

    p = sub.add_parser("resolve", parents=[common, verbose],
                       help="show a seccomp profile's base chain and merged result")
    p.add_argument("name", metavar="NAME", help="SeccompProfile name")
    p.set_defaults(handler=_command("local", "cmd_resolve"))

    p = sub.add_parser("daemon", parents=[common],
                       help="run the service in the foreground (what systemd starts)")
    p.set_defaults(handler=_command("daemon", "cmd_daemon"), long_running=True)

    p = sub.add_parser("validate", parents=[common, verbose],
                       help="check manifest files or directories without installing anything")
    p.add_argument("paths", metavar="PATH", nargs="+", help="file or directory")
    p.set_defaults(handler=_command("local", "cmd_validate"))

    p = sub.add_parser("status", parents=[common], help="the running daemon's view of the "
                       "profiles, or of one (exit 1 when any is in error)")
    p.add_argument("target", metavar="KIND/NAME", nargs="?",
                   help="one profile in detail, e.g. seccomp/web-frontend")
    p.add_argument("-a", "--all", action="store_true",
                   help="a row for every profile (default: a summary, and the profiles that "
                        "need attention)")
    p.set_defaults(handler=_command("remote", "cmd_status"))

    p = sub.add_parser("is-ready", parents=[common], help="exit 0 once the daemon has finished "
                       "its first reconcile, 1 before, 69 when it cannot be reached")
    p.set_defaults(handler=_command("remote", "cmd_is_ready"))

    for name, text in (("reconcile", "make the daemon reconcile now and wait for the result"),
                       ("reload", "make the daemon reload its config and wait for the result")):
        p = sub.add_parser(name, parents=[common], help=f"{text} (root only)")
        p.add_argument("--timeout", metavar="SECONDS", type=_wait_seconds,
                       default=DEFAULT_WAIT_S, help=f"how long to wait (default "
                       f"{DEFAULT_WAIT_S:g}, at most {MAX_WAIT_S:g})")
        p.set_defaults(handler=_command("remote", f"cmd_{name}"))
    _oci_commands(sub, common)
    return parser


def _oci_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    login = _Parser(add_help=False)
    login.add_argument("-u", "--username", metavar="USER",
                       help="registry user; the password comes from $PASSWORD")

    p = sub.add_parser("push", parents=[common, login],
                       help="push seccomp profiles to a registry as an OCI artifact")
    p.add_argument("-f", "--profiles", action="append", default=[], metavar="FILE",
                   help="profile file; repeat (or separate with commas) for several platforms")
    p.add_argument("-p", "--platforms", action="append", default=[], metavar="OS/ARCH[/VAR]",
                   help="platform of the -f file at the same position (default: this host's, "
                   "for a single file)")
    p.add_argument("-a", "--annotations", action="append", default=[], metavar="KEY:VALUE",
                   help="annotation for every layer; repeat for several")
    p.add_argument("--format", choices=("spo", "kep6061"), default="spo",
                   help="spo: SeccompProfile YAML, one layer per platform (default); kep6061: "
                   "one plain runtime-spec JSON profile for container runtimes")
    p.add_argument("--sign", choices=("none",), default="",
                   help="none: push unsigned (hosts refuse it unless their trust policy says "
                   "verify = false); without it, push signs with --key or keyless")
    p.add_argument("--key", metavar="FILE",
                   help="sign with this ECDSA P-256 private key (PEM, or cosign's encrypted "
                   "key with the password in $COSIGN_PASSWORD)")
    p.add_argument("--identity-token", metavar="TOKEN",
                   help="sign keyless with this OIDC identity token (default: "
                   "$SIGSTORE_ID_TOKEN), through the Fulcio and Rekor of [signing]")
    p.add_argument("--tlog-upload", action="store_true",
                   help="with --key: log the signature in the Rekor of [signing], for hosts "
                   "whose trust policy says require_tlog = true")
    p.add_argument("--bundle", action="store_true",
                   help="write a sigstore bundle (OCI referrer, cosign v3's format) instead of "
                   "the legacy .sig tag that spoc and SPO read")
    p.add_argument("reference", metavar="REF", help="[oci://]host[:port]/repository[:tag]")
    p.set_defaults(handler=_command("oci", "cmd_push"))

    p = sub.add_parser("pull", parents=[common, login],
                       help="fetch a profile artifact (trust policy and digests checked)")
    p.add_argument("-o", "--output-file", metavar="FILE", default="-",
                   help="where to write the profile (default: standard output)")
    p.add_argument("-p", "--platform", metavar="OS/ARCH[/VAR]",
                   help="platform whose profile to take (default: this host's)")
    p.add_argument("reference", metavar="REF",
                   help="[oci://]host[:port]/repository[:tag][@sha256:...]")
    p.set_defaults(handler=_command("oci", "cmd_pull"))

    p = sub.add_parser("verify", parents=[common, login],
                       help="check an artifact's signatures against its trust policy")
    p.add_argument("reference", metavar="REF",
                   help="[oci://]host[:port]/repository[:tag][@sha256:...]")
    p.set_defaults(handler=_command("verify", "cmd_verify"))

    p = sub.add_parser("cache", help="show or empty the OCI base profile cache")
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser,
                               required=True)
    for action, text in (("list", "cached references, their digests and failures"),
                         ("prune", "drop failures that are due and content nothing uses"),
                         ("clear", "drop everything (bases are fetched again when needed)")):
        a = actions.add_parser(action, parents=[common], help=text)
        a.set_defaults(handler=_command("oci", "cmd_cache"))


@contextlib.contextmanager
def _collector(*, off: bool, restore: bool) -> Iterator[None]:
    """A one-shot command runs without the cyclic garbage collector: it allocates a few hundred
    thousand objects and frees nearly all of them by reference counting, and the collector's
    passes over them were a tenth of a no-op ``secprof apply`` (~40 ms at 1050 profiles); what
    it leaves in cycles goes with the process. The daemon keeps it. When the command ends the
    collector is turned back on only for a caller that goes on (``restore``: tests run ``main``
    in-process): turning it on scans everything the command allocated (~10 ms), for nothing in
    a process that is about to exit."""
    collecting = gc.isenabled()
    if off:
        gc.disable()
    try:
        yield
    finally:
        if collecting and restore:
            gc.enable()


def _print_error(error: AgentError) -> None:
    print(f"secprof: error: {error}", file=sys.stderr)
    if error.hint:
        print(f"secprof: hint: {error.hint}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; ``argv`` None: this process's own command line (the console script)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "handler", None):
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        with _collector(off=not getattr(args, "long_running", False), restore=argv is not None):
            code: int = args.handler(args)
        return code
    except AgentError as exc:  # the error's code decides the exit code (agent/codes.py)
        _print_error(exc)
        return exit_status(exc.code)
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
