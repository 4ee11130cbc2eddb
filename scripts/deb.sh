#!/usr/bin/env bash
# scripts/deb.sh — `make deb`: the Debian packages postgresql-15-ordersync and
# ordersyncd, built by dpkg-buildpackage (debhelper, debian/ at the top) in a
# staging copy of this tree, so the tree keeps no debian/ build leftovers and
# dpkg-buildpackage's output (written next to the source) lands in OUT.
# Then lintian over the result: the build fails on any error or warning it
# reports (overrides, each with its reason, are in debian/*.lintian-overrides).
#
#   scripts/deb.sh [OUT]          (default OUT: dist/)
#   ORDERSYNC_DEB_REUSE=1         copy the tree's built objects too and skip
#                                 the clean, so make only links what changed
#                                 (test/packaging uses it after `make install`;
#                                 `make deb` builds from scratch, with Debian's
#                                 hardening flags)
#   ORDERSYNC_DEB_LINTIAN=0       skip lintian
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/dist}
reuse=${ORDERSYNC_DEB_REUSE:-0}
version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
stage=$(mktemp -d /tmp/ordersync-deb.XXXXXX)
trap 'rm -rf "$stage"' EXIT
src="$stage/ordersync-$version"
mkdir -p "$src" "$out"

# the files git knows (committed or not, and not deleted since) and new ones
# it does not ignore; with reuse, also the ignored build outputs (objects,
# the relay, the .so). Outside a git checkout: the whole tree.
list_files() {
	local f
	if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		if [ "$reuse" = 1 ]; then
			git -C "$top" ls-files -z --cached --others
		else
			git -C "$top" ls-files -z --cached --others --exclude-standard
		fi | while IFS= read -r -d '' f; do
			[ -e "$top/$f" ] && printf '%s\0' "$f"
		done
	else
		(cd "$top" && find . -path ./dist -prune -o ! -type d -print0)
	fi
}
list_files | (cd "$top" && tar -cf - --no-recursion --null -T -) | tar -xpf - -C "$src"
# objects of a directory that is not the source (fuzz, dist, tmp) stay out
rm -rf "$src/dist" "$src/tmp"

jobs=$(nproc 2>/dev/null || echo 2)
flags=(-b -us -uc "-j$jobs")
[ "$reuse" = 1 ] && flags+=(-nc)
echo "  DEB      ordersync $version (dpkg-buildpackage ${flags[*]})"
if ! (cd "$src" && dpkg-buildpackage "${flags[@]}") >"$stage/build.log" 2>&1; then
	tail -40 "$stage/build.log" >&2
	echo "ordersync: dpkg-buildpackage failed (log above)" >&2
	exit 1
fi
# compiler warnings are errors (-Werror): nothing to show from the log
arch=$(dpkg --print-architecture)
changes="ordersync_${version}_${arch}.changes"
for f in "$stage"/*.deb "$stage"/*.buildinfo "$stage/$changes"; do
	cp "$f" "$out/"
	case "$f" in *.deb) echo "  -> $out/$(basename "$f")" ;; esac
done

if [ "${ORDERSYNC_DEB_LINTIAN:-1}" = 1 ]; then
	echo "  LINTIAN  $changes"
	# lintian runs as root here (CI): it warns about that on stderr, nothing else
	if ! lintian --fail-on error,warning --info --display-info "$out/$changes" 2>"$stage/lintian.err"; then
		cat "$stage/lintian.err" >&2
		echo "ordersync: lintian found problems (above)" >&2
		exit 1
	fi
	grep -v "running with root privileges" "$stage/lintian.err" >&2 || true
fi
