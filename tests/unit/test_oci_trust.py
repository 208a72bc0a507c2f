"""[[trust]]: parsing every mode, errors that name entry and key, longest prefix, policy ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.config import parse as parse_config
from agent.errors import ConfigError, VerificationError
from agent.oci.reference import parse, parse_scope
from agent.oci.signatures import Keyless, NoVerify, PublicKeys
from agent.oci.trust import KeylessTerms, KeyTerms, TrustPolicy, TrustStore
from tests.support.fakesigstore import FakeSigstore


def policy(scope: str) -> TrustPolicy:
    return TrustPolicy(scope=parse_scope(scope), terms=None)


def public_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A config directory with two keys, a trusted root, and files that are none of those."""
    (tmp_path / "a.pub").write_bytes(public_pem())
    (tmp_path / "b.pub").write_bytes(public_pem())
    (tmp_path / "root.json").write_bytes(FakeSigstore(name="t").trusted_root_json())
    (tmp_path / "junk.pub").write_text("not a key\n")
    (tmp_path / "junk.json").write_text("{}")
    return tmp_path


def load(text: str, directory: Path) -> tuple[TrustPolicy, ...]:
    return parse_config(text, source=directory / "config.toml").trust


def test_longest_prefix_wins() -> None:
    store = TrustStore([policy("r"), policy("r/team/base"), policy("r/team")])
    assert store.policy_for(parse("oci://r/team/base/runc:v1")).scope == parse_scope(
        "r/team/base")
    assert store.policy_for(parse("oci://r/team/other")).scope == parse_scope("r/team")
    assert store.policy_for(parse("oci://r/elsewhere")).scope == parse_scope("r")


def test_no_entry_is_refused() -> None:
    store = TrustStore([policy("r/team")])
    for ref in ("oci://r/teamx/a", "oci://other/team/a", "oci://r/a"):
        with pytest.raises(VerificationError) as info:
            store.policy_for(parse(ref))
        assert info.value.code == "untrusted-repository"
        assert "[[trust]]" in info.value.hint
    with pytest.raises(VerificationError):
        TrustStore([]).policy_for(parse("oci://r/a"))


def test_every_mode_is_read(files: Path) -> None:
    keyless, keys, logged, unsigned = load(
        '[[trust]]\nscope = "r/keyless"\n'
        'keyless = { issuer = "https://i.example", identity_regex = "rel@.*" }\n'
        'trusted_root = "root.json"\n'
        '[[trust]]\nscope = "r/keys"\npublic_keys = ["a.pub", "b.pub"]\n'
        '[[trust]]\nscope = "r/logged"\npublic_keys = ["a.pub"]\nrequire_tlog = true\n'
        'trusted_root = "root.json"\n'
        '[[trust]]\nscope = "r/open"\nverify = false\n', files)
    assert isinstance(keyless.terms, KeylessTerms)
    assert (keyless.terms.issuer, keyless.terms.identity_regex) == ("https://i.example", "rel@.*")
    assert keyless.terms.trusted_root is not None
    assert keyless.terms.trusted_root.path == files / "root.json"
    assert isinstance(keys.terms, KeyTerms)
    assert [k.path.name for k in keys.terms.keys] == ["a.pub", "b.pub"]
    assert not keys.terms.require_tlog
    assert isinstance(logged.terms, KeyTerms)
    assert logged.terms.require_tlog
    assert unsigned.terms is None
    assert keyless.label == "[[trust]][1]"
    assert "matching /rel@.*/ (whole value)" in keyless.describe()
    assert "a.pub" in keys.describe()
    assert "verify = false" in unsigned.describe()

    store = TrustStore([keyless, keys, logged, unsigned])
    built = [store.signature_policy(p) for p in (keyless, keys, logged, unsigned)]
    assert isinstance(built[0], Keyless)
    assert isinstance(built[1], PublicKeys)
    assert len(built[1].parsed) == 2
    assert isinstance(built[2], PublicKeys)
    assert built[2].require_tlog
    assert isinstance(built[3], NoVerify)
    assert store.signature_policy(keyless) is built[0]  # built once


@pytest.mark.parametrize(("text", "message"), [
    ('[[trust]]\nscope = "r/p"\n', "[[trust]][1] keyless: missing"),
    ('[[trust]]\nverify = false\n', "[[trust]][1] scope: required"),
    ('[[trust]]\nscope = "r/p"\nverify = true\n', "only verify = false is meaningful"),
    ('[[trust]]\nscope = "r/p"\nverify = false\nkeyless = { issuer = "x", identity = "y" }\n',
     "[[trust]][1] verify: keyless and verify exclude each other"),
    ('[[trust]]\nscope = "r/p"\nkeyless = { issuer = "x", identity = "y" }\n'
     'public_keys = ["a.pub"]\n', "[[trust]][1] public_keys: keyless and public_keys exclude"),
    ('[[trust]]\nscope = "r/p"\nkeyless = { issuer = "x" }\n',
     "[[trust]][1] keyless.identity: give exactly one of identity and identity_regex"),
    ('[[trust]]\nscope = "r/p"\nkeyless = { issuer = "x", identity = "y", identity_regex = "z" }\n',
     "keyless.identity: give exactly one"),
    ('[[trust]]\nscope = "r/p"\nkeyless = { issuer = "", identity = "y" }\n',
     "keyless.issuer: must not be empty"),
    ('[[trust]]\nscope = "r/p"\nkeyless = { issuer = "x", identity_regex = "a(" }\n',
     "[[trust]][1] keyless.identity_regex: 'a(' is not a regular expression"),
    ('[[trust]]\nscope = "r/p"\nkeyless = { issuer = "x", identity = "y", subject = "z" }\n',
     "[[trust]][1] keyless.subject: unknown key"),
    ('[[trust]]\nscope = "r/p"\nkeyless = "x"\n', "keyless: expected a table"),
    ('[[trust]]\nscope = "r/p"\nkeyless = { issuer = "x", identity = "y" }\n'
     'require_tlog = true\n', "require_tlog: keyless signatures always need their log entry"),
    ('[[trust]]\nscope = "r/p"\npublic_keys = []\n', "public_keys: give 1 to 64"),
    ('[[trust]]\nscope = "r/p"\npublic_keys = ["missing.pub"]\n',
     "[[trust]][1] public_keys[0]: cannot read"),
    ('[[trust]]\nscope = "r/p"\npublic_keys = ["a.pub"]\ntrusted_root = "root.json"\n',
     "trusted_root: with public_keys, a trusted root only serves to check log entries"),
    ('[[trust]]\nscope = "r/p"\nkeyless = { issuer = "x", identity = "y" }\n'
     'trusted_root = "nowhere.json"\n', "[[trust]][1] trusted_root: cannot read"),
    ('[[trust]]\nscope = "r/p"\nverify = false\ntrusted_root = "root.json"\n',
     "trusted_root: nothing is verified under verify = false"),
    ('[[trust]]\nscope = "r/p"\nverify = false\nverfy = false\n', "verfy: unknown key"),
    ('[[trust]]\nscope = "r/P"\nverify = false\n', "must be lowercase"),
    ('[[trust]]\nscope = "r/p"\nverify = "no"\n', "expected true or false"),
    ('[[trust]]\nscope = "r/p"\nverify = false\n[[trust]]\nscope = "r/p/"\nverify = false\n',
     "[[trust]][2] scope: r/p is already covered by [[trust]][1]"),
    ('[trust]\nscope = "r/p"\n', "array of tables"),
])
def test_config_errors_name_entry_and_key(files: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(text, files)
    assert message in info.value.message


@pytest.mark.parametrize(("text", "message"), [
    ('public_keys = ["a.pub", "junk.pub"]\n', "[[trust]][1] public_keys[1] ("),
    ('keyless = { issuer = "x", identity = "y" }\ntrusted_root = "junk.json"\n',
     "[[trust]][1] trusted_root: trusted root"),
])
def test_contents_are_checked_on_first_use_naming_the_key(
        files: Path, text: str, message: str) -> None:
    (entry,) = load(f'[[trust]]\nscope = "r/p"\n{text}', files)
    with pytest.raises(ConfigError) as info:
        TrustStore([entry]).signature_policy(entry)
    assert message in info.value.message
    assert info.value.code == "trust-policy-invalid"


def test_policy_ids_follow_settings_and_bytes(files: Path) -> None:
    def policy_id(text: str) -> str:
        (entry,) = load(f'[[trust]]\nscope = "r/p"\n{text}', files)
        return TrustStore([entry]).signature_policy(entry).policy_id

    keyless = 'keyless = { issuer = "x", identity = "y" }\ntrusted_root = "root.json"\n'
    assert policy_id(keyless) == policy_id(keyless)
    assert policy_id(keyless) != policy_id(keyless.replace('"y"', '"z"'))
    assert policy_id('public_keys = ["a.pub"]\n') != policy_id('public_keys = ["b.pub"]\n')
    assert policy_id('public_keys = ["a.pub"]\n') != policy_id(
        'public_keys = ["a.pub"]\nrequire_tlog = true\ntrusted_root = "root.json"\n')
    before = policy_id(keyless)
    (files / "root.json").write_bytes(FakeSigstore(name="rotated").trusted_root_json())
    assert policy_id(keyless) != before  # same file, other root: other id
