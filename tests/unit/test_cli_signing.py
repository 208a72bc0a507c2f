"""How push picks its signer from flags and environment; keys are loaded before anything is
pushed, with errors that say what to do."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.cli.signing import choose
from agent.errors import SigningError, UsageError
from agent.publish.keys import encrypted_key_pem

KEY = ec.generate_private_key(ec.SECP256R1())


def args(**given: object) -> argparse.Namespace:
    flags: dict[str, object] = {"sign": "", "key": None, "identity_token": None,
                                "bundle": False, "tlog_upload": False}
    return argparse.Namespace(**{**flags, **given})


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "cosign.key"
    path.write_bytes(encrypted_key_pem(KEY, b"pw"))
    return path


def test_the_flags_pick_the_signer(key_file: Path, tmp_path: Path) -> None:
    assert choose(args(sign="none"), {}) is None
    keyed = choose(args(key=str(key_file), bundle=True), {"COSIGN_PASSWORD": "pw"})
    assert keyed is not None
    assert keyed.key is not None
    assert keyed.key.private_numbers() == KEY.private_numbers()
    assert (keyed.identity_token, keyed.format) == (None, "sigstore-bundle")
    assert choose(args(identity_token="t"), {}) == choose(args(), {"SIGSTORE_ID_TOKEN": "t"})
    # An explicit key wins over an ambient token.
    keyed = choose(args(key=str(key_file)), {"SIGSTORE_ID_TOKEN": "t", "COSIGN_PASSWORD": "pw"})
    assert keyed is not None
    assert keyed.identity_token is None
    plain = tmp_path / "plain.key"
    plain.write_bytes(KEY.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    assert choose(args(key=str(plain)), {}) is not None  # unencrypted: no password needed


@pytest.mark.parametrize(("given", "message"), [
    ({}, "push signs what it pushes"),
    ({"sign": "none", "bundle": True}, "--sign=none pushes unsigned: drop --bundle"),
    ({"key": "k", "identity_token": "t"}, "exclude each other"),
    ({"identity_token": "t", "tlog_upload": True}, "keyless signatures are always logged"),
    ({"key": "/nonexistent/cosign.key"}, "--key /nonexistent/cosign.key: cannot read it"),
])
def test_usage_errors(given: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError) as info:
        choose(args(**given), {})
    assert message in info.value.message


def test_key_errors_say_what_to_do(key_file: Path) -> None:
    with pytest.raises(SigningError) as info:
        choose(args(key=str(key_file)), {})
    assert info.value.code == "signing-key-password"
    assert "$COSIGN_PASSWORD" in info.value.hint
    with pytest.raises(SigningError) as info:
        choose(args(key=str(key_file)), {"COSIGN_PASSWORD": "wrong"})
    assert "wrong password" in info.value.message


def test_an_encrypted_key_without_pynacl_is_a_clear_error(key_file: Path) -> None:
    # A child process where PyNaCl cannot be imported (the `sign` extra not installed).
    script = ("import sys\nsys.modules['nacl'] = None\nfrom agent.cli.main import main\n"
              "sys.exit(main(['push', '--key', sys.argv[1], '-f', 'x.yaml', 'r.invalid/p:v1']))")
    result = subprocess.run([sys.executable, "-c", script, str(key_file)], capture_output=True,
                            text=True, timeout=60, check=False, env={"COSIGN_PASSWORD": "pw"})
    assert result.returncode == 1, result.stderr
    assert "cosign encrypted keys need PyNaCl" in result.stderr
    assert "pip install 'secprof[sign]'" in result.stderr
    assert "Traceback" not in result.stderr
