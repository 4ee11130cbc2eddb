#!/usr/bin/env bash
# scripts/private_pg.sh DIR — a private copy of PostgreSQL 15 in DIR with the
# extension in this tree installed into it, so that a build under test never
# replaces the system-wide one other work relies on.  Prints the line to eval:
#   eval "$(scripts/private_pg.sh /tmp/mypg)"   # sets ORDERSYNC_PGBIN
# then scripts/cluster.sh (and everything that calls it) uses that server.
# PostgreSQL finds its lib and share directories relative to its binaries,
# so a copied tree works as it is.  Run again to reinstall after a rebuild.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: scripts/private_pg.sh DIR}
if [ ! -x "$dir/usr/lib/postgresql/15/bin/postgres" ]; then
	mkdir -p "$dir/usr/lib/postgresql" "$dir/usr/share/postgresql"
	cp -a /usr/lib/postgresql/15 "$dir/usr/lib/postgresql/"
	cp -a /usr/share/postgresql/15 "$dir/usr/share/postgresql/"
	chmod -R a+rX "$dir"
fi
make -s -C "$top/src/extension" >/dev/null
make -s -C "$top/src/extension" install DESTDIR="$dir" >/dev/null
echo "export ORDERSYNC_PGBIN=$dir/usr/lib/postgresql/15/bin"
