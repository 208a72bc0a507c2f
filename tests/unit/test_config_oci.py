import dataclasses
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.config import Config, OciSection, parse
from agent.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def test_example_config_is_exactly_the_defaults() -> None:
    config = parse(EXAMPLE.read_text(), source=Path("/etc/secprof/config.toml"))
    assert dataclasses.replace(config, source=None) == Config()


def test_example_config_documents_every_key() -> None:
    text = EXAMPLE.read_text()
    sections = {name: re.search(rf"^\[{name}\]$(.*?)(?=^\[|\Z)", text, re.M | re.S)
                for name in ("agent", "seccomp", "oci", "signing")}
    for name, match in sections.items():
        assert match, f"[{name}] missing from config.example.toml"
        section = getattr(Config(), name)
        for key in (f.name for f in dataclasses.fields(section)):
            assert re.search(rf"^{key} = ", match.group(1), re.M), f"[{name}] {key} undocumented"
    for key in ("scope", "verify", "keyless", "public_keys", "require_tlog", "trusted_root"):
        assert re.search(rf"^# {key} = ", text, re.M), f"[[trust]] {key} undocumented"
    for key in ("issuer", "identity", "issuer_regex", "identity_regex"):
        assert re.search(rf"^#.*\b{key}\b", text, re.M), f"[[trust]] keyless.{key} undocumented"


def test_the_documented_trust_entries_parse(tmp_path: Path) -> None:
    """The commented [[trust]] examples, uncommented, are a valid config (files provided)."""
    text = EXAMPLE.read_text()
    examples = text[text.index("# [[trust]]"):]
    lines = [line.removeprefix("# ").removeprefix("#") for line in examples.splitlines()]
    (tmp_path / "keys").mkdir()
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    (tmp_path / "keys" / "release.pub").write_bytes(key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    config = parse("\n".join(lines) + "\n", source=tmp_path / "config.toml")
    assert [p.describe().split(":")[0] for p in config.trust] == [
        "keyless", "public keys keys/release.pub".replace("keys/", f"{tmp_path}/keys/"),
        "verify = false"]


def test_oci_section_is_read_and_normalised(tmp_path: Path) -> None:
    config = parse(
        '[oci]\ntag_ttl_s = 0\ntimeout_s = 0.5\nconnect_timeout_s = 1\nretries = 0\n'
        'insecure_registries = ["Reg:5000", "reg:5000", "127.0.0.1:5001"]\n'
        'auth_file = "auth.json"\n', source=tmp_path / "config.toml",
    )
    assert config.oci == OciSection(
        tag_ttl_s=0, timeout_s=0.5, connect_timeout_s=1.0, retries=0,
        insecure_registries=("127.0.0.1:5001", "reg:5000"), auth_file=tmp_path / "auth.json",
    )
    assert parse('[oci]\nauth_file = ""\n').oci.auth_file is None


@pytest.mark.parametrize(("text", "message"), [
    ('[oci]\ninsecure_registries = ["http://r:5000"]\n', "not a registry host"),
    ('[oci]\ninsecure_registries = "r:5000"\n', "expected a list of strings"),
    ("[oci]\ntimeout_s = 0\n", "between 0.1 and 600"),
    ("[oci]\nretries = 9\n", "between 0 and 5"),
    ("[oci]\ncache_max_entries = 0\n", ">= 1"),
    ("[oci]\nfailure_backoff_s = 60\nfailure_backoff_max_s = 10\n", ">= 60"),
    ("[oci]\ntag_ttl = 5\n", "unknown key"),
    ("[ocii]\n", "unknown section"),
])
def test_oci_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(text)
