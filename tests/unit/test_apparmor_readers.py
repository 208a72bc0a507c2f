"""The readers of what apparmor_parser and the kernel interface say (pure: text and tmp files)."""

from __future__ import annotations

from pathlib import Path

from agent.backends import apparmor_parser as ap

STDERR = """\
Cache read/write disabled: interface file missing. (Kernel needs AppArmor 2.4 compatibility patch.)
AppArmor parser error for /s/secprof.a in profile /s/secprof.a at line 5: syntax error, unexpected TOK_ID
AppArmor parser error for /s/secprof.b in profile /etc/apparmor.d/abstractions/x at line 1: Invalid capability bogus.
/usr/sbin/apparmor_parser: Unable to replace "c".  Profile doesn't exist
"""  # noqa: E501


def test_messages_name_file_line_and_included_file() -> None:
    a, b = ap.messages(STDERR)
    assert (a.file, a.line, a.inner, a.what) == ("/s/secprof.a", 5, "",
                                                 "syntax error, unexpected TOK_ID")
    assert (b.file, b.inner) == ("/s/secprof.b", "/etc/apparmor.d/abstractions/x")
    assert ap.unable(STDERR) == {"c": "Profile doesn't exist"}
    assert not ap.tail(STDERR).startswith("Cache")


def test_names_and_declared_mode() -> None:
    assert ap.top_names("a\na//child\nb\n\n") == ["a", "b"]
    text = (b"#include <tunables/global>\n"
            b"profile web /usr/bin/web flags=(attach_disconnected, complain) {\n}\n")
    assert ap.declared_mode(text, "web") == "complain"
    assert ap.declared_mode(b"profile web flags=(enforce,x) {\n}\n", "web") == "enforce"
    assert ap.declared_mode(b"profile web {\n}\n", "web") is None
    assert ap.declared_mode(b"profile other flags=(complain) {\n}\n", "web") is None


def test_kernel_profiles(tmp_path: Path) -> None:
    assert ap.kernel_profiles(tmp_path) == {}
    (tmp_path / "profiles").write_text("docker-default (enforce)\n/usr/bin/a b (complain)\n"
                                       "web//hat (enforce)\n")
    assert ap.kernel_profiles(tmp_path) == {"docker-default": "enforce",
                                            "/usr/bin/a b": "complain", "web//hat": "enforce"}


def test_confined_pids_read_both_attr_files_and_stacks(tmp_path: Path) -> None:
    labels = {
        "10": ("attr/apparmor/current", "web (enforce)\n"),
        "11": ("attr/current", "web//hat (complain)\n"),
        "12": ("attr/current", "db//&web (enforce)\n"),
        "13": ("attr/current", "webby (enforce)\n"),
        "14": ("attr/current", "unconfined\n"),
    }
    for pid, (rel, label) in labels.items():
        (tmp_path / pid / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / pid / rel).write_text(label)
    (tmp_path / "self").mkdir()  # not a PID
    (tmp_path / "15").mkdir()  # gone while reading: no attr files
    assert ap.confined_pids(tmp_path, ["web", "db", "x"]) == {
        "web": [10, 11, 12], "db": [12], "x": []}
    assert ap.confined_pids(tmp_path / "missing", ["web"]) == {"web": []}
