"""Write the man pages secprof(8) and secprof.toml(5) from the code's own documentation.

secprof(8) comes from the argparse parser (`agent.cli.main.build_parser`: every command, its
usage and each option's help), the exit codes in `agent.cli.main` (their comments) and the
default paths in `agent.config`; secprof.toml(5) from `config.example.toml`, which documents
every key above its default. Nothing is copied by hand, so the pages cannot drift from the code.

Usage: python scripts/manpages.py OUTDIR   (run with an interpreter that can import agent)
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_TOML_LINE = re.compile(r"^(\[\[?[\w.]+\]\]?|[\w-]+ = .*)$")


# Characters groff's default (ASCII and latin1) devices lack: written as their ASCII look-alikes.
_ASCII = str.maketrans({"\u2026": "...", "\u2192": "->", "\u2014": "--", "\u2013": "-",
                        "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                        "\u00d7": "x", "\u2265": ">=", "\u2264": "<="})


def roff(text: str) -> str:
    """Escape plain text for roff: backslashes, hyphens, and control characters at line start;
    typographic characters become their ASCII look-alikes."""
    text = text.translate(_ASCII)
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line
                     for line in text.splitlines())


def _header(name: str, section: int, title: str, version: str) -> list[str]:
    return [f'.TH {name.upper()} {section} "" "secprof {version}" "{title}"']


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser,
                                                                   str]]:
    """(name, parser, help) of each subcommand, recursively (``cache list`` …)."""
    for action in parser._actions:  # argparse has no public walk over its subcommands
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, sub, helps.get(name, "")
                for inner, subsub, text in _subcommands(sub):
                    yield f"{name} {inner}", subsub, text


def _options(parser: argparse.ArgumentParser) -> list[str]:
    out: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        if action.option_strings:
            metavar = ""
            if action.nargs != 0:
                metavar = " " + str(action.metavar or action.dest.upper())
            name = ", ".join(f"\\fB{roff(o)}\\fR{roff(metavar)}" for o in action.option_strings)
        else:
            name = f"\\fI{roff(str(action.metavar or action.dest))}\\fR"
        text = action.help or ""
        if action.choices and not isinstance(action.choices, dict):
            text += f" (one of: {', '.join(map(str, action.choices))})"
        out += [".TP", name, roff(text.replace("%%", "%"))]
    return out


def _exit_codes() -> list[tuple[int, str]]:
    """The members of agent.codes.Exit with their comments, as the source states them."""
    from agent import codes  # noqa: PLC0415 - needs the package on sys.path first

    found = re.findall(r"^    (\w+) = (\d+)(?:\s*#\s*(.*))?$",
                       inspect.getsource(codes.Exit), re.M)
    return [(int(code), comment or name.lower()) for name, code, comment in found]


def _error_codes() -> list[str]:
    """Every error code of the registry (agent.codes.Code): meaning and exit status."""
    from agent.codes import Code  # noqa: PLC0415

    out: list[str] = []
    for code in sorted(Code, key=str):
        out += [".TP", f"\\fB{roff(str(code))}\\fR",
                roff(f"{code.meaning} (exit {int(code.exit_code)})")]
    return out


def secprof_8(version: str) -> str:
    """The page of the command: every subcommand with its usage and options."""
    from agent import config  # noqa: PLC0415
    from agent.cli.main import build_parser  # noqa: PLC0415

    parser = build_parser()
    lines = _header("secprof", 8, "System Administration", version)
    lines += [".SH NAME", "secprof \\- " + roff(parser.description or ""),
              ".SH SYNOPSIS", "\\fBsecprof\\fR [\\fB\\-\\-version\\fR] \\fICOMMAND\\fR "
              "[\\fIOPTIONS\\fR]", ".SH DESCRIPTION",
              roff("secprof reads Security Profiles Operator manifests from a desired-state "
                   "directory and installs the profiles they describe where the kubelet and "
                   "container runtimes read them. `secprof daemon` is the service systemd runs "
                   "(secprof.service); the other commands reconcile once, inspect, or talk to "
                   "the running daemon over its status socket. Its configuration is described "
                   "in secprof.toml(5)."),
              ".SH COMMANDS"]
    for name, sub, text in _subcommands(parser):
        usage = " ".join(sub.format_usage().removeprefix("usage: ").split())
        lines += [f".SS {roff(name)}", ".nf", roff(usage), ".fi", ".PP", roff(text)]
        lines += _options(sub)
    lines += [".SH EXIT STATUS"]
    for code, text in _exit_codes():
        lines += [".TP", f"\\fB{code}\\fR", roff(text)]
    lines += [".SH ERROR CODES", roff(
        "Every error carries a stable code: in the journal's ERROR_CODE field, the "
        "secprof_errors_total metric, the status API and --json output."), *_error_codes()]
    defaults = config.AgentSection()
    lines += [".SH ENVIRONMENT", ".TP", f"\\fB{config.CONFIG_ENV}\\fR",
              "The config file when \\fB\\-\\-config\\fR is not given.", ".TP",
              "\\fBSECPROF_DEBUG\\fR", "Set to show the traceback of an internal error.",
              ".SH FILES"]
    for path, text in ((config.DEFAULT_CONFIG_PATH, "the configuration, secprof.toml(5)"),
                       (defaults.profiles_dir, "the desired state (default)"),
                       (defaults.state_dir, "what secprof installed on this host (its ledger)"),
                       (defaults.cache_dir, "caches, such as OCI base profiles"),
                       (defaults.socket, "the daemon's status API")):
        lines += [".TP", f"\\fI{roff(str(path))}\\fR", roff(text)]
    lines += [".SH SEE ALSO", "secprof.toml(5), systemctl(1), journalctl(1)", ""]
    return "\n".join(lines)


def _paragraphs(comments: list[str]) -> list[str]:
    """Comment lines as roff: blank lines split paragraphs, a TOML line followed by indented
    lines is a tagged paragraph (a mode and what it means), other TOML lines stay verbatim."""
    out: list[str] = []
    verbatim = False
    for i, line in enumerate(comments):
        following = comments[i + 1] if i + 1 < len(comments) else ""
        tag = bool(_TOML_LINE.match(line)) and following.startswith("  ")
        is_code = bool(_TOML_LINE.match(line)) and not tag
        if is_code != verbatim:
            out.append(".nf" if is_code else ".fi")
            verbatim = is_code
        if tag:
            out += [".TP", f"\\fB{roff(line)}\\fR"]
        elif not line.strip():
            out.append("" if verbatim else ".PP")
        else:
            out.append(roff(line if verbatim else line.strip()))
    if verbatim:
        out.append(".fi")
    return out


def _keys(keys: list[str], comments: list[str]) -> list[str]:
    """Keys that share one comment: one tagged paragraph."""
    out: list[str] = []
    for n, line in enumerate(keys):
        key, _, default = line.partition(" = ")
        out += [".TP" if n == 0 else ".TQ", f"\\fB{roff(key)}\\fR = {roff(default)}"]
    # .IP, not .PP: a second paragraph stays indented under its key.
    return out + [".IP" if line == ".PP" else line for line in _paragraphs(comments)]


def secprof_toml_5(version: str, example: str) -> str:
    """The page of the config file: config.example.toml's comments, key by key."""
    lines = _header("secprof.toml", 5, "File Formats", version)
    lines += [".SH NAME", "secprof.toml \\- configuration of secprof(8)", ".SH DESCRIPTION"]
    pending: list[str] = []
    keys: list[str] = []
    key_comments: list[str] = []
    started = False

    def flush_keys() -> None:
        nonlocal keys, key_comments
        if keys:
            lines.extend(_keys(keys, key_comments))
        keys, key_comments = [], []

    for raw in example.splitlines():
        line = raw.rstrip()
        if line.startswith("#"):
            pending.append(line[2:] if line.startswith("# ") else line[1:])
            continue
        if not line:
            if not started:  # the file's opening comment is the page's description
                lines += _paragraphs(pending)
                pending = []
                started = True
            elif pending:
                pending.append("")
            continue
        started = True
        if line.startswith("["):
            flush_keys()
            lines += _paragraphs(pending)
            pending = []
            lines += [f".SH SECTION {roff(line)}"]
        elif pending or not keys:  # a new comment: a new entry
            flush_keys()
            keys, key_comments, pending = [line], pending, []
        else:  # no comment of its own: it shares the previous key's
            keys.append(line)
    flush_keys()
    if pending:
        lines += [".SH SECTION [[trust]]", *_paragraphs(pending)]
    lines += [".SH FILES", ".TP", "\\fI/etc/secprof/config.toml\\fR",
              "The default location.", ".SH SEE ALSO", "secprof(8)", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from agent import __version__  # noqa: PLC0415

    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    (out / "secprof.8").write_text(secprof_8(__version__))
    example = (ROOT / "config.example.toml").read_text()
    (out / "secprof.toml.5").write_text(secprof_toml_5(__version__, example))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
