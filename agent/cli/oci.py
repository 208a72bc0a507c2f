"""Commands for OCI artifacts: ``push`` and ``pull`` (flags as spoc's), and ``cache``.

REF is accepted with or without ``oci://``. Both ``push`` and ``pull`` honour ``--config``: its
insecure registries, auth file and (for ``pull``) trust policies. ``-u USER`` takes the password
from ``$PASSWORD``, as spoc does, and overrides the auth file for REF's registry only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent import app
from agent.api.schema import SCHEMA_VERSION
from agent.cli.main import EXIT_OK
from agent.cli.output import emit_json, table
from agent.config import Config, load
from agent.errors import ResolveError, UsageError
from agent.fsutil import atomic_write
from agent.oci.artifact import Format, Platform, read_profile
from agent.oci.auth import Credential
from agent.oci.cache import Listing
from agent.oci.reference import Reference, parse


def config_arg(args: argparse.Namespace) -> Config:
    return load(Path(args.config) if args.config else None)


def reference_arg(text: str) -> Reference:
    try:
        return parse(text, require_scheme=False)
    except ResolveError as exc:
        raise UsageError(exc.message, hint=exc.hint) from None


def login_arg(args: argparse.Namespace, ref: Reference) -> tuple[str, Credential] | None:
    if not args.username:
        return None
    password = os.environ.get("PASSWORD")
    if password is None:
        raise UsageError("-u/--username needs the password in the PASSWORD environment variable")
    return ref.registry, Credential(args.username, password)


def _platform(text: str) -> Platform:
    try:
        return Platform.parse(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _pairs(args: argparse.Namespace, fmt: Format) -> list[tuple[Platform | None, Path]]:
    """spoc's rules: one file alone is for this host's platform; several need one -p each."""
    files = [Path(f) for value in args.profiles for f in value.split(",") if f]
    platforms = [_platform(p) for p in args.platforms]
    if not files:
        raise UsageError("name the profile to push with -f FILE")
    if len(set(platforms)) != len(platforms):
        raise UsageError("each -p platform may be given once")
    if fmt is Format.KEP6061:
        if len(files) != 1 or platforms:
            raise UsageError("a KEP-6061 artifact holds exactly one profile, for every "
                             "platform: give one -f and no -p")
        return [(None, files[0])]
    if not platforms:
        if len(files) > 1:
            raise UsageError("with several -f, give one -p per file, in the same order")
        return [(Platform.host(), files[0])]
    if len(platforms) != len(files):
        raise UsageError(f"{len(files)} profile(s) but {len(platforms)} platform(s): give "
                         "-f and -p in pairs")
    return list(zip(platforms, files, strict=True))


def _annotations(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition(":")
        if not sep or not key.strip():
            raise UsageError(f"-a {value!r}: write KEY:VALUE")
        out[key.strip()] = text.strip()
    return out


def cmd_push(args: argparse.Namespace) -> int:
    # Only push publishes: pull and cache never load agent.publish (nor, through its upload
    # module, oras-py and requests, which a pull served from the cache does without).
    from agent.cli import signing  # noqa: PLC0415
    from agent.publish.pack import pack  # noqa: PLC0415
    from agent.publish.upload import Uploader  # noqa: PLC0415

    ref = reference_arg(args.reference)
    if ref.digest:
        raise UsageError("push to a tag: the digest is known only once the artifact is built")
    signer = signing.choose(args, os.environ)
    fmt = Format(args.format)
    config = config_arg(args)
    profiles = []
    for plat, path in _pairs(args, fmt):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
        if len(data) > config.oci.max_profile_bytes:
            raise UsageError(f"{path} is {len(data)} bytes; hosts refuse profiles larger than "
                             f"[oci] max_profile_bytes ({config.oci.max_profile_bytes})")
        read_profile(data, fmt, str(path))  # never publish what no host would accept
        profiles.append((plat, data))
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        packed = pack(fmt, profiles, _annotations(args.annotations), created)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    # Signed before anything is pushed: a signature that cannot be made leaves nothing behind.
    signed = signing.sign(signer, config, ref, packed.digest) if signer else None
    client = Uploader(app.build_registry(config, login=login_arg(args, ref)))
    digest = client.push(ref, packed)
    signature: dict[str, Any] | None = None
    if signed is not None:
        where = signing.publish(client, ref, signed, digest=digest,
                                subject_size=len(packed.manifest), created=created)
        signature = {"format": signed.format, "signer": signed.signer, "location": where}
    layers = [{"title": plat.title if plat else "profile.json", "platform": str(plat or "any"),
               "size": len(data)} for plat, data in profiles]
    if args.json:
        emit_json({"schema_version": SCHEMA_VERSION, "reference": str(ref), "digest": digest,
                   "format": fmt.value, "signed": signature is not None,
                   "signature": signature, "layers": layers})
        return EXIT_OK
    print(f"pushed {ref.pinned(digest)} ({fmt.value}, "
          f"{'signed' if signature else 'unsigned'})")
    for layer in layers:
        print(f"  {layer['title']}  {layer['platform']}  {layer['size']} bytes")
    if signature:
        print(f"signed ({signature['format']}) by {signature['signer']}: "
              f"{ref.name}:{signature['location']}" if signature["format"] == "cosign-legacy"
              else f"signed ({signature['format']}) by {signature['signer']}: referrer "
              f"{ref.name}@{signature['location']}")
    return EXIT_OK


def cmd_pull(args: argparse.Namespace) -> int:
    ref = reference_arg(args.reference)
    plat = _platform(args.platform) if args.platform else None
    config = config_arg(args)
    login = login_arg(args, ref)
    source = app.build_oci_source(config, registry=lambda: app.build_registry(config,
                                                                                login=login))
    pulled = source.pull(ref, plat)
    record = pulled.record
    to_stdout = args.output_file == "-"
    if not to_stdout:
        atomic_write(Path(args.output_file), pulled.data, mode=0o644)
    if args.json:
        doc: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION, "reference": str(pulled.reference),
            "digest": record.manifest, "format": record.format, "title": record.title,
            "layer": record.layer, "trust": pulled.verdict.policy_id,
            "signer": pulled.verdict.signer,
            "profile": pulled.profile.name,
        }
        if to_stdout:
            doc["content"] = pulled.data.decode("utf-8")
        else:
            doc["file"] = args.output_file
        emit_json(doc)
        return EXIT_OK
    where = sys.stderr if to_stdout else sys.stdout
    if to_stdout:
        sys.stdout.buffer.write(pulled.data)
        sys.stdout.flush()
    print(f"pulled {pulled.reference} ({record.title or record.format}, "
          f"{len(pulled.data)} bytes, signer: {pulled.verdict.signer})"
          + ("" if to_stdout else f" to {args.output_file}"), file=where)
    return EXIT_OK


def cmd_cache(args: argparse.Namespace) -> int:
    config = config_arg(args)
    cache = app.oci_cache(config)
    if args.action == "list":
        return _cache_list(args, config, cache.listing())
    dropped = cache.prune() if args.action == "prune" else (cache.clear(), 0)
    total = sum(dropped)
    if args.json:
        emit_json({"schema_version": SCHEMA_VERSION, "action": args.action, "removed": total,
                   "directory": str(cache.directory)})
    else:
        print(f"{args.action}: {total} entr{'y' if total == 1 else 'ies'} removed from "
              f"{cache.directory}")
    return EXIT_OK


def _cache_list(args: argparse.Namespace, config: Config, listing: Listing) -> int:
    now = time.time()
    rows: list[dict[str, Any]] = []
    for key, record in listing.resolved:
        platform, _, reference = key.partition("|")
        pinned = "@" in reference
        rows.append({"reference": reference, "platform": platform, "digest": record.manifest,
                     "layer": record.layer, "format": record.format, "title": record.title,
                     "confirmedAt": record.checked_at,
                     "fresh": pinned or record.fresh(now, config.oci.tag_ttl_s)})
    failures = [{"key": key, "code": f.code, "message": f.message, "count": f.count,
                 "at": f.at, "retryAt": f.retry_at} for key, f in listing.failures]
    verifications = [_verification(key, record) for key, record in listing.verifications]
    if args.json:
        emit_json({"schema_version": SCHEMA_VERSION, "references": rows, "failures": failures,
                   "verifications": verifications,
                   "content": {"entries": listing.content_entries,
                               "bytes": listing.content_bytes}})
        return EXIT_OK
    if rows:
        table([["REFERENCE", "PLATFORM", "DIGEST", "CONFIRMED", "STATE"]] + [[
            r["reference"], r["platform"], r["digest"],
            datetime.fromtimestamp(r["confirmedAt"], UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
            "fresh" if r["fresh"] else "expired (last known good)",
        ] for r in rows])
    else:
        print("no references cached")
    for failure in failures:
        print(f"failure: {failure['key']}: {failure['message']} (x{failure['count']})")
    for verification in verifications:
        print(f"verified: {verification['repository']}@{verification['digest']}: signed by "
              f"{verification['signer']} ({verification['source']}; re-checked when used)")
    print(f"{listing.content_entries} profile(s), {listing.content_bytes} bytes")
    return EXIT_OK


def _verification(key: str, record: dict[str, Any]) -> dict[str, Any]:
    """A cached verification as listed: what the record says (it is verified again on use)."""
    policy_id, _, subject = key.partition("|")
    repository, _, digest = subject.rpartition("@")
    verified = record.get("verified") or {}
    signer = (f"{verified.get('identity')} ({verified.get('issuer')})"
              if verified.get("identity") else f"key {verified.get('key_fingerprint')}")
    return {"policyId": policy_id, "repository": repository, "digest": digest,
            "signer": signer, "format": verified.get("format"),
            "source": record.get("source"), "storedAt": record.get("stored_at")}
