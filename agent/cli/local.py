"""Commands that work on this host directly, without the daemon: apply, plan, resolve, validate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from agent import app
from agent.api.schema import SCHEMA_VERSION, error_json, report_json
from agent.cli.main import EXIT_OK, EXIT_PROFILE_ERROR
from agent.cli.output import emit_json, print_lines, print_report, summarised, table
from agent.codes import Code
from agent.config import Config, load
from agent.errors import AgentError, ResolveError
from agent.model.manifests import load_paths
from agent.model.profile import Kind, ProfileKey
from agent.model.seccomp import SeccompProfile
from agent.reconcile.driver import Built
from agent.seccomp.build import SeccompBuild, build_all
from agent.seccomp.driver import link_json
from agent.seccomp.merge import union
from agent.seccomp.render import pretty, spec_json
from agent.seccomp.validate import check_merged, name_warnings


def _config(args: argparse.Namespace) -> Config:
    return load(Path(args.config) if args.config else None)


def cmd_apply(args: argparse.Namespace) -> int:
    config = _config(args)
    reconciler = app.build_reconciler(config)
    with app.state_lock(config):  # one writer: the desired state is read under the lock too
        report = reconciler.reconcile(app.load_desired(config))
    if args.json:
        emit_json(report_json(report))
    else:
        print_report(report, verbose=args.verbose)
    return EXIT_OK if report.ok else EXIT_PROFILE_ERROR


def cmd_plan(args: argparse.Namespace) -> int:
    config = _config(args)
    reconciler = app.build_reconciler(config)
    desired = app.load_desired(config, read_only=True)
    report = reconciler.preview(reconciler.evaluate(desired, read_only=True))
    if args.json:
        emit_json(report_json(report))
    else:
        print_report(report, verbose=args.verbose)
    return EXIT_OK if report.ok else EXIT_PROFILE_ERROR


def cmd_resolve(args: argparse.Namespace) -> int:
    config = _config(args)
    key = ProfileKey(Kind.SECCOMP, args.name)
    desired = app.load_desired(config, read_only=True)
    errors = desired.key_errors.get(key)
    if errors:
        raise errors[0]
    evaluation = app.build_reconciler(config).evaluate(desired, read_only=True)
    found = next((part.built[key] for part in evaluation.parts if key in part.built), None)
    if found is None:
        raise ResolveError(
            f"no SeccompProfile named {args.name!r} in {config.agent.profiles_dir}",
            code=Code.PROFILE_NOT_FOUND,
        )
    if isinstance(found, AgentError):
        raise found
    built = found.detail
    assert isinstance(built, SeccompBuild)
    merged = spec_json(built.resolution.merged.spec)
    if args.json:
        emit_json({
            "schema_version": SCHEMA_VERSION,
            "name": args.name,
            "digest": built.digest,
            "chain": [link_json(link) for link in built.resolution.chain],
            "merged": merged,
            "notes": list(built.notes),
            "warnings": list(built.warnings),
        })
        return EXIT_OK
    rows = [["#", "REFERENCE", "DIGEST", "SOURCE"]]
    for i, link in enumerate(built.resolution.chain):
        rows.append([str(i), link.reference, link.content_digest(),
                     f"{link.source} ({link.signer})" if link.signer else link.source])
    table(rows)
    print(f"\nmerged profile ({built.digest}):")
    print(pretty(built.resolution.merged.spec), end="")
    for reason in built.resolution.stale_reasons():
        print(f"stale: {reason}")
    print_lines(summarised("note: ", built.notes, verbose=args.verbose), sys.stdout)
    print_lines(summarised("warning: ", built.warnings, verbose=args.verbose), sys.stdout)
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    config = _config(args)
    desired = load_paths([Path(p) for p in args.paths], app.load_options(config))
    seccomp = {k: p for k, p in desired.of_kinds({Kind.SECCOMP}).items()
               if isinstance(p, SeccompProfile)}
    built = build_all(seccomp, invalid=desired.invalid_names(Kind.SECCOMP),
                      max_depth=config.seccomp.max_base_depth)

    errors: list[dict[str, Any]] = [error_json(e) for e in desired.errors]
    lines = [f"error: {e}" for e in desired.errors]
    lines.extend(f"note: {note}" for note in desired.notes)
    checked: list[dict[str, Any]] = []
    # Other kinds: their drivers' builds (pure: render and check, nothing installed).
    others: dict[ProfileKey, object] = {}
    for driver in app.build_drivers(config):
        if Kind.SECCOMP not in driver.kinds:
            others.update(driver.build(desired, validated=()))
    for key, result in sorted({**built, **others}.items()):
        profile = desired.profiles[key]
        warnings: list[str] = []
        notes: list[str] = list(getattr(profile, "notes", ()))
        problem: AgentError | None = None
        if isinstance(result, SeccompBuild | Built):
            warnings.extend(result.warnings)
            notes = list(result.notes)
        elif isinstance(result, ResolveError) and isinstance(profile, SeccompProfile) and (
            result.code in (Code.BASE_NOT_FOUND, Code.OCI_UNSUPPORTED)
        ):
            # The base is outside what was given: check the profile on its own.
            warnings.append(f"{result.message}; the chain was not checked")
            warnings.extend(profile.warnings)
            warnings.extend(name_warnings(profile.spec, profile.spec.architectures))
            try:
                check_merged(union(profile.spec, None).spec)
            except AgentError as exc:
                problem = exc
        else:
            assert isinstance(result, AgentError)
            problem = result
        label = f"{profile.origin} {key}: "
        lines.extend(summarised(f"warning: {label}", warnings, verbose=args.verbose))
        lines.extend(summarised(f"note: {label}", notes, verbose=args.verbose))
        if problem is not None:
            errors.append({**error_json(problem), "profile": str(key)})
            lines.append(f"error: {profile.origin} {key}: {problem}")
        else:
            checked.append({"kind": key.kind.value, "name": key.name,
                            "source": str(profile.origin), "warnings": warnings,
                            "notes": notes})

    ok = not errors
    if args.json:
        emit_json({"schema_version": SCHEMA_VERSION, "ok": ok, "files": len(desired.files),
                   "profiles": checked, "errors": errors, "notes": list(desired.notes)})
    else:
        for line in lines:
            print(line)
        print(f"{len(desired.files)} file(s), {len(checked)} valid profile(s) checked, "
              f"{len(errors)} error(s)")
    return EXIT_OK if ok else EXIT_PROFILE_ERROR
