"""``secprof verify REF``: what verified, by whom, and why not.

Resolves REF's tag to a digest, finds every signature of that digest (up to the discovery cap)
and checks each against the ``[[trust]]`` entry covering REF, exactly as a host does before using
a base, but with nothing cached and nothing stopped at the first success: the answer lists each
signature with its signer or its refusal. Exit 0 when the host would accept the artifact (a
signature verified, or the entry says ``verify = false``), 1 when it would refuse it.
"""

from __future__ import annotations

import argparse
from typing import Any

from agent import app
from agent.api.schema import SCHEMA_VERSION
from agent.cli.main import EXIT_OK, EXIT_PROFILE_ERROR
from agent.cli.oci import config_arg, login_arg, reference_arg
from agent.cli.output import emit_json
from agent.errors import VerificationError
from agent.oci.discover import candidates
from agent.oci.signatures.discovery import (
    MAX_CANDIDATES,
    BundleCandidate,
    Candidate,
    LegacyCandidate,
    verify_first,
)
from agent.oci.signatures.policy import NoVerify, Verified
from agent.oci.trust import UNVERIFIED, TrustStore


def cmd_verify(args: argparse.Namespace) -> int:
    ref = reference_arg(args.reference)
    config = config_arg(args)
    trust = TrustStore(config.trust)
    policy = trust.policy_for(ref)
    signature_policy = trust.signature_policy(policy)
    client = app.build_registry(config, login=login_arg(args, ref))
    digest = ref.digest or client.resolve(ref)
    results: list[dict[str, Any]] = []
    if not isinstance(signature_policy, NoVerify):
        for number, candidate in enumerate(candidates(client, ref, digest)):
            if number == MAX_CANDIDATES:
                break
            results.append(_check(candidate, signature_policy, ref.name, digest))
    verified = [r for r in results if r["verified"]]
    accepted = bool(verified) or isinstance(signature_policy, NoVerify)
    signer = verified[0]["signer"] if verified else (UNVERIFIED if accepted else None)
    doc = {"schema_version": SCHEMA_VERSION, "reference": str(ref), "digest": digest,
           "trust": policy.label, "scope": str(policy.scope), "policy": policy.describe(),
           "policyId": signature_policy.policy_id, "accepted": accepted,
           "verified": bool(verified), "signer": signer, "signatures": results}
    if args.json:
        emit_json(doc)
    else:
        _print(doc)
    return EXIT_OK if accepted else EXIT_PROFILE_ERROR


def _check(candidate: Candidate, policy: Any, repository: str, digest: str) -> dict[str, Any]:
    kind = ("cosign-legacy" if isinstance(candidate, LegacyCandidate) else
            "sigstore-bundle" if isinstance(candidate, BundleCandidate) else "unreadable")
    out: dict[str, Any] = {"source": candidate.source, "format": kind}
    try:
        # One candidate at a time, so that every signature gets its own answer.
        record = verify_first([candidate], policy, expected_digest=digest,
                              expected_repository=repository)
    except VerificationError as exc:
        message = exc.message.removeprefix(f"{candidate.source}: ")
        return {**out, "verified": False,
                "error": {"code": exc.code, "message": message, "hint": exc.hint}}
    return {**out, "verified": True, "signer": record.signer, **_details(record)}


def _details(record: Verified) -> dict[str, Any]:
    return {"identity": record.identity, "issuer": record.issuer,
            "keyFingerprint": record.key_fingerprint, "repository": record.repository,
            "tlogIndex": record.tlog_index,
            "integratedTime": None if record.integrated_time is None
            else record.integrated_time.isoformat()}


def _print(doc: dict[str, Any]) -> None:
    print(doc["reference"])
    print(f"  digest:  {doc['digest']}")
    print(f"  trust:   {doc['trust']} (scope {doc['scope']}): {doc['policy']}")
    for result in doc["signatures"]:
        where = f"{result['source']} ({result['format']})"
        if result["verified"]:
            logged = (f", logged {result['integratedTime']} at index {result['tlogIndex']}"
                      if result["tlogIndex"] is not None else ", no log entry")
            print(f"  verified: {where}: signed by {result['signer']}{logged}")
        else:
            error = result["error"]
            print(f"  refused:  {where}: {error['code']}: {error['message']}")
    if doc["verified"]:
        print(f"accepted: signed by {doc['signer']}")
    elif doc["accepted"]:
        print(f"accepted: {UNVERIFIED}; no signature was looked for")
    elif not doc["signatures"]:
        print("refused: signature-missing: no signature found for this digest (looked for "
              "the .sig tag and sigstore bundle referrers)")
    else:
        print("refused: no signature verifies")
