# Packaging entry points; development uses scripts/setup.sh and pytest (README).
# Debian's own tools and python3.11, never a python that happens to be first on PATH.
export PATH := /usr/sbin:/usr/bin:/sbin:/bin

.PHONY: deb lintian clean

deb:
	sh scripts/build-deb.sh

# lintian's verdict on the package just built: errors and warnings fail.
lintian: deb
	lintian --fail-on error,warning dist/secprof_*.deb

clean:
	rm -rf build/deb dist
