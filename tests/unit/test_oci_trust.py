import pytest

from agent.config import parse as parse_config
from agent.errors import ConfigError, VerificationError
from agent.oci.reference import parse, parse_scope
from agent.oci.trust import TrustPolicy, TrustStore


def policy(scope: str) -> TrustPolicy:
    return TrustPolicy(scope=parse_scope(scope), verify=False)


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


def test_policy_id_is_stable_and_tells_policies_apart() -> None:
    assert policy("r/a").id == policy("r/a").id
    assert policy("r/a").id != policy("r/b").id
    assert policy("r/a").id.startswith("trust-")
    assert "verify = false" in policy("r/a").signer


def test_config_trust_entries() -> None:
    config = parse_config('[[trust]]\nscope = "R:5000/p"\nverify = false\n'
                          '[[trust]]\nscope = "r:5000"\nverify = false\n')
    assert [str(p.scope) for p in config.trust] == ["r:5000/p", "r:5000"]


@pytest.mark.parametrize(("text", "message"), [
    ('[[trust]]\nscope = "r/p"\n', "verify: required"),
    ('[[trust]]\nverify = false\n', "scope: required"),
    ('[[trust]]\nscope = "r/p"\nverify = true\n', "only verify = false is accepted"),
    ('[[trust]]\nscope = "r/p"\nverify = false\nkeyless = { issuer = "x", identity = "y" }\n',
     "keyless: signature verification is not supported yet"),
    ('[[trust]]\nscope = "r/p"\nverify = false\npublic_keys = ["k.pub"]\n',
     "public_keys: signature verification is not supported yet"),
    ('[[trust]]\nscope = "r/p"\nverify = false\nverfy = false\n', "verfy: unknown key"),
    ('[[trust]]\nscope = "r/P"\nverify = false\n', "must be lowercase"),
    ('[[trust]]\nscope = "r/p"\nverify = "no"\n', "expected true or false"),
    ('[[trust]]\nscope = "r/p"\nverify = false\n[[trust]]\nscope = "r/p/"\nverify = false\n',
     "already covered by [[trust]] #1"),
    ('[trust]\nscope = "r/p"\n', "array of tables"),
])
def test_config_trust_errors_name_entry_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")) as info:
        parse_config(text)
    assert "[[trust]]" in str(info.value)
