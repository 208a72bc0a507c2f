#!/bin/sh
# Set up this checkout on Debian 12, as root: the system packages secprof needs, then .venv with
# secprof installed in editable mode. With --test, also what the test suite uses (runc and
# busybox-static for container enforcement tests, docker-registry for OCI tests, the Debian
# packaging tools, systemd-nspawn and mmdebstrap for the package's system tests) and the test
# extras. Safe to run again: it installs only what is missing.
set -eu
cd "$(dirname "$0")/.."

packages="python3 python3-venv python3-dev gcc pkg-config libsystemd-dev libseccomp2"
extras=""
if [ "${1:-}" = "--test" ]; then
    packages="$packages runc busybox-static docker-registry"
    packages="$packages apparmor apparmor-profiles"  # the real apparmor_parser and a corpus
    # SELinux tests: the real semodule on a private copy of the reference policy's store.
    packages="$packages policycoreutils semodule-utils selinux-policy-default"
    packages="$packages debhelper dpkg-dev lintian systemd-container mmdebstrap"
    extras="[test]"
fi

missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
echo "setup: installing secprof$extras into .venv"
.venv/bin/pip install -q -e ".$extras"
# Byte-compile now, as a package install would: every later command starts faster (and does
# not depend on whether the environment lets Python write its caches).
.venv/bin/python -m compileall -q agent
