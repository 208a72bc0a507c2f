#!/bin/sh
# make deb: dist/secprof_<version>_<arch>.deb. Builds in build/deb/ from a copy of the files the
# package needs, with Debian's python3.11 (never pyenv's: PATH is reset) and pip's cache kept
# between builds ($PIP_CACHE_DIR, default /var/cache/secprof-build/pip). $PIP_EXTRA adds pip
# options, e.g. PIP_EXTRA="--constraint $PWD/constraints.txt" to pin the bundled versions.
set -eu
cd "$(dirname "$0")/.."
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV

version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' agent/__init__.py)
arch=$(dpkg --print-architecture)
[ -n "$version" ] || { echo "build-deb: no __version__ in agent/__init__.py" >&2; exit 1; }
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-/var/cache/secprof-build/pip}"
mkdir -p "$PIP_CACHE_DIR"

work=build/deb
src="$work/secprof-$version"
rm -rf "$work"
mkdir -p "$src/scripts" "$src/packaging" dist
# Only what the package is made of; no .venv, no caches, no test data.
tar -cf - --exclude=__pycache__ agent pyproject.toml README.md config.example.toml \
    | tar -xf - -C "$src"
cp scripts/manpages.py scripts/bundled_licenses.py "$src/scripts/"
cp packaging/secprof "$src/packaging/"
cp -r packaging/debian "$src/debian"
cp packaging/systemd/secprof.service "$src/debian/secprof.service"
# A native package: the Debian version is the project's. The date is the last commit's (or
# SOURCE_DATE_EPOCH's), so that rebuilding the same tree gives the same changelog.
date=$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")
cat > "$src/debian/changelog" <<CHANGELOG
secprof ($version) unstable; urgency=medium

  * Built from the secprof source tree, version $version.

 -- secprof maintainers <maintainers@users.noreply.r-seed-1e3ec64c.example>  $date
CHANGELOG

(cd "$src" && dpkg-buildpackage --build=binary --no-sign -j1 >../build.log 2>&1) || {
    tail -40 "$work/build.log" >&2
    echo "build-deb: dpkg-buildpackage failed; the whole log is $work/build.log" >&2
    exit 1
}
mv "$work/secprof_${version}_${arch}.deb" dist/
echo "dist/secprof_${version}_${arch}.deb"
