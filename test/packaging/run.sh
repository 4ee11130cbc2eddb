#!/usr/bin/env bash
# test/packaging/run.sh — the Debian packages, installed for real (issue 14
# item 1). Suite `packaging` of scripts/test.sh; needs root (dpkg -i).
#
# Builds postgresql-15-ordersync and ordersyncd with scripts/deb.sh (from the
# objects `make install` just built: ORDERSYNC_DEB_REUSE=1; `make deb`
# builds from scratch and runs lintian), installs them with dpkg -i, checks
# the files are where Debian's PostgreSQL looks, CREATE EXTENSION from them
# in a throwaway cluster on the system server (port 26040), verifies the
# unit offline, runs the installed relay the way ordersyncd@.service does
# (its user, its ExecStart line, a conf in /etc/ordersync, a NOTIFY_SOCKET
# this test reads) until READY=1 and watchdog pings, and stops it with
# SIGTERM. Then purges the packages and puts back every file they replaced,
# byte for byte, so the machine is as `make install` left it.
# Also --config's refusals, with the tree's relay (no database needed).
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
here="$top/test/packaging"
PORT=${ORDERSYNC_PACKAGING_PORT:-26040}
INSTANCE=pkgtest
CONF=/etc/ordersync/$INSTANCE.conf
STATE=/var/lib/ordersync/$INSTANCE
UNIT=/lib/systemd/system/ordersyncd@.service
PKGS=(postgresql-15-ordersync ordersyncd)
unset ORDERSYNC_PGBIN	# the cluster runs the system server with the packaged files

pass() { echo "PASS: packaging/$1"; }
fail() {
	echo "FAIL: packaging/$1"
	shift
	for l in "$@"; do printf '    %s\n' "$l"; done
}
started=$(date +%s)
# how long each step took, printed at the end: the suite must stay short
phases=
last=$started
phase() { local now; now=$(date +%s); phases+=" $1 $((now - last))s"; last=$now; }

if [ "$(id -u)" -ne 0 ]; then
	echo "FAIL: packaging/root (dpkg -i needs root; run make test as root)"
	exit 1
fi
for p in "${PKGS[@]}"; do
	if grep -qE 'ok (installed|config-files|unpacked|half-.*)$' <<<"$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)"; then
		echo "FAIL: packaging/clean_machine ($p is already installed: this test would remove it;" \
			"dpkg --purge it first)"
		exit 1
	fi
done

work=$(mktemp -d /tmp/ordersync-pkg.XXXXXX)
chmod 0755 "$work"
cluster="$work/pg"
relay_pid=
listen_pid=
user_existed=0
getent passwd ordersyncd >/dev/null && user_existed=1
installed=0

cleanup() {
	[ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null
	[ -n "$listen_pid" ] && kill "$listen_pid" 2>/dev/null
	"$top/scripts/cluster.sh" stop "$cluster" >/dev/null 2>&1
	rm -f "$CONF"
	rm -rf "$STATE"
	rmdir /var/lib/ordersync 2>/dev/null
	if [ "$installed" = 1 ]; then
		dpkg --purge "${PKGS[@]}" >"$work/purge.log" 2>&1 ||
			{ echo "packaging: dpkg --purge failed:"; cat "$work/purge.log"; }
		# put back what the packages replaced (make install's files)
		if [ -d "$work/backup" ]; then
			(cd "$work/backup" && find . ! -type d | while read -r f; do
				mkdir -p "/$(dirname "$f")" && cp -a "$f" "/$f"
			done)
		fi
		if [ "$user_existed" = 0 ] && getent passwd ordersyncd >/dev/null; then
			deluser --system --quiet ordersyncd >/dev/null 2>&1
			getent group ordersyncd >/dev/null && delgroup --system --quiet ordersyncd >/dev/null 2>&1
		fi
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# --- --config: values checked as flags, with file and line (tree's relay) ---
relay="${ORDERSYNCD:-$top/src/relay/ordersyncd}"
cfg="$work/c.conf"
conf_case() {	# name expected-exit grep-pattern [args...] < conf text
	local name=$1 want=$2 pat=$3 rc
	shift 3
	cat >"$cfg"
	chmod 0644 "$cfg"
	"$relay" --config="$cfg" "$@" >/dev/null 2>"$work/err"
	rc=$?
	if [ "$rc" = "$want" ] && grep -q -- "$pat" "$work/err"; then
		pass "config_$name"
	else
		fail "config_$name" "exit $rc (want $want), stderr:" "$(cat "$work/err")"
	fi
}
conf_case unknown_key 1 "c.conf:3: unknown option \"slto\"" <<<$'# relay\ndbname = x\nslto = a'
conf_case abbreviation 1 "unknown option \"db\"" <<<'db = x'
conf_case no_equals 1 "c.conf:1: expected \"name = value\"" <<<'dbname x'
conf_case bad_bool 1 "create-slot takes true or false" <<<'create-slot = maybe'
conf_case int_checked 1 "status-interval must be a number" <<<$'dbname = x\nslot = s\nstatus-interval = often'
conf_case slot_checked 1 "\"Bad-Name\" is not a valid slot name" <<<$'dbname = x\nslot = Bad-Name'
conf_case flag_overrides 1 "\"Flag-Wins\" is not a valid slot name" --slot=Flag-Wins <<<$'dbname = x\nslot = good'
conf_case no_help_key 1 "unknown option \"help\"" <<<'help = true'
conf_case false_leaves_out 1 "needs --create-slot" <<<$'dbname = x\nslot = s\nsnapshot = true\ncreate-slot = off'
for where in inside first; do
	if [ $where = inside ]; then printf 'dbname = x\x00slot = y\n'; else printf '\x00dbname = x\n'; fi >"$work/nul.conf"
	"$relay" --config="$work/nul.conf" >/dev/null 2>"$work/err"
	if [ $? = 1 ] && grep -q "NUL byte" "$work/err"; then
		pass "config_nul_byte_$where"
	else
		fail "config_nul_byte_$where" "$(cat "$work/err")"
	fi
done
"$relay" --config="$work/none.conf" >/dev/null 2>"$work/err"
if [ $? = 2 ] && grep -q "could not open --config file" "$work/err"; then pass config_missing_file; else fail config_missing_file "$(cat "$work/err")"; fi
echo 'dbname = x' >"$cfg"
chmod 0666 "$cfg"
"$relay" --config="$cfg" >/dev/null 2>"$work/err"
if [ $? = 2 ] && grep -q "writable by everyone" "$work/err"; then pass config_world_writable; else fail config_world_writable "$(cat "$work/err")"; fi
chmod 0644 "$cfg"
"$relay" --config="$cfg" --config="$cfg" >/dev/null 2>"$work/err"
if [ $? = 1 ] && grep -q "given twice" "$work/err"; then pass config_twice; else fail config_twice "$(cat "$work/err")"; fi


# --- the relay builds and runs without libsystemd (service.c's calls are no-ops) ---
rdir="$top/src/relay"
if (cd "$rdir" && cc -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -O2 -c service.c \
	-o "$work/service_nosd.o" && cc -o "$work/ordersyncd_nosd" $(ls ./*.o | grep -v '/service.o$') \
	"$work/service_nosd.o" $(make -s --no-print-directory print-ldlibs | sed 's/-lsystemd//')) \
	>"$work/nosd.log" 2>&1 && ! grep -q libsystemd <<<"$(ldd "$work/ordersyncd_nosd")" &&
	grep -q '^ordersyncd ' <<<"$(NOTIFY_SOCKET="$work/none" WATCHDOG_USEC=1000 "$work/ordersyncd_nosd" --version)"; then
	pass relay_without_libsystemd
else
	fail relay_without_libsystemd "$(cat "$work/nosd.log")"
fi
phase config
# --- build the packages ---
t0=$(date +%s)
# nostrip noautodbgsym: no debug packages to split off (half the build
# time); no compression: the packages only travel to dpkg -i next door
if DEB_BUILD_OPTIONS="nostrip noautodbgsym" DPKG_DEB_COMPRESSOR_TYPE=none ORDERSYNC_DEB_REUSE=1 ORDERSYNC_DEB_LINTIAN=0 "$top/scripts/deb.sh" "$work/dist" >"$work/deb.log" 2>&1; then
	pass "build ($(($(date +%s) - t0)) s)"
else
	fail build "$(tail -30 "$work/deb.log")"
	exit 1
fi
debs=()
for p in "${PKGS[@]}"; do debs+=("$(ls "$work/dist/${p}"_*.deb)"); done

phase build
# --- back up what the packages will replace, then install them ---
mkdir -p "$work/backup"
for d in "${debs[@]}"; do
	dpkg-deb --fsys-tarfile "$d" | tar -tf - | sed 's|^\./|/|' | while read -r f; do
		if [ -e "$f" ] && [ ! -d "$f" ]; then
			mkdir -p "$work/backup$(dirname "$f")"
			cp -a "$f" "$work/backup$f"
		fi
	done
done
(cd "$work/backup" && find . -type f -exec sha256sum {} + | sort -k2) >"$work/before.sha"
installed=1
if dpkg -i "${debs[@]}" >"$work/dpkg.log" 2>&1; then
	pass install
else
	fail install "$(cat "$work/dpkg.log")"
	exit 1
fi

phase install
# --- files where Debian's PostgreSQL 15 looks for them ---
pkglib=$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir)
share=$(/usr/lib/postgresql/15/bin/pg_config --sharedir)
missing=()
for f in "$pkglib/ordersync.so" "$share/extension/ordersync.control" \
	"$share/extension/ordersync--$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$top/ordersync.control").sql"; do
	[ "$(dpkg -S "$f" 2>/dev/null | cut -d: -f1)" = postgresql-15-ordersync ] || missing+=("$f")
done
for f in /usr/bin/ordersyncd /usr/share/man/man1/ordersyncd.1.gz "$UNIT"; do
	[ "$(dpkg -S "$f" 2>/dev/null | cut -d: -f1)" = ordersyncd ] || missing+=("$f")
done
if [ ${#missing[@]} -eq 0 ] && [ "$pkglib" = /usr/lib/postgresql/15/lib ] &&
	[ "$share" = /usr/share/postgresql/15 ] && [ -z "$(dpkg --verify "${PKGS[@]}")" ]; then
	pass file_locations
else
	fail file_locations "pkglibdir=$pkglib sharedir=$share; not from the package: ${missing[*]}" \
		"$(dpkg --verify "${PKGS[@]}")"
fi
if getent passwd ordersyncd >/dev/null && [ "$(stat -c '%U:%G %a' /etc/ordersync)" = "root:ordersyncd 750" ] &&
	[ "$(getent passwd ordersyncd | cut -d: -f7)" = /usr/sbin/nologin ]; then
	pass system_user
else
	fail system_user "$(getent passwd ordersyncd) /etc/ordersync: $(stat -c '%U:%G %a' /etc/ordersync)"
fi
if grep -q -- "--config=FILE" <<<"$(man -l /usr/share/man/man1/ordersyncd.1.gz 2>/dev/null)"; then
	pass man_page
else
	fail man_page "man ordersyncd does not describe --config"
fi

# --- CREATE EXTENSION from the installed package ---
if "$top/scripts/cluster.sh" start "$cluster" "$PORT" >"$work/cluster.log" 2>&1; then
	eval "$("$top/scripts/cluster.sh" env "$cluster" "$PORT")"
	psql -qAtX -c "CREATE DATABASE pkgtest" >/dev/null
	out=$(psql -qAtX -d pkgtest -v ON_ERROR_STOP=1 \
		-c "CREATE EXTENSION ordersync CASCADE" \
		-c "SELECT extversion FROM pg_extension WHERE extname = 'ordersync'" \
		-c "SELECT count(*) FROM pg_proc WHERE probin = '\$libdir/ordersync'" 2>&1)
	want=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$top/ordersync.control")
	if [ "$(sed -n 1p <<<"$out")" = "$want" ] && [ "$(sed -n 2p <<<"$out")" -gt 0 ]; then
		pass create_extension
	else
		fail create_extension "$out"
	fi
else
	fail create_extension "$(cat "$work/cluster.log")"
fi

phase create_extension
# --- the unit, offline ---
out=$(systemd-analyze verify "$UNIT" 2>&1)
if [ $? -eq 0 ] && ! grep -qi "ordersyncd" <<<"$out"; then
	pass unit_verify
else
	fail unit_verify "$out"
fi
score=$(SYSTEMD_COLORS=0 systemd-analyze security --offline=true --no-pager "$UNIT" 2>/dev/null |
	sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) \(.*\)/\1 \2/p')
echo "    systemd-analyze security: $score"
# the hardening the issue names, as written in the unit
hard=(Type=notify Restart=on-failure WatchdogSec= User=ordersyncd ProtectSystem=strict
	NoNewPrivileges=yes ProtectHome=yes PrivateTmp=yes PrivateDevices=yes "CapabilityBoundingSet="
	"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" "SystemCallFilter=@system-service"
	MemoryDenyWriteExecute=yes "ExecStart=/usr/bin/ordersyncd --config=/etc/ordersync/%i.conf")
absent=()
for h in "${hard[@]}"; do grep -q "^$h" "$UNIT" || absent+=("$h"); done
if [ ${#absent[@]} -eq 0 ]; then pass unit_hardening; else fail unit_hardening "missing: ${absent[*]}"; fi

phase unit
# --- the relay, run as the unit runs it ---
# ExecStart with %i expanded, as user ordersyncd, a state directory like
# StateDirectory= makes (owned by the user, 0750) as working directory,
# and systemd's environment: NOTIFY_SOCKET and WATCHDOG_USEC (4 s here)
exec_start=$(sed -n 's/^ExecStart=//p' "$UNIT")
exec_start=${exec_start//%i/$INSTANCE}
read -r -a cmd <<<"$exec_start"
install -d -o ordersyncd -g ordersyncd -m 0750 "$STATE"
install -o root -g ordersyncd -m 0640 /dev/null "$CONF"
cat >"$CONF" <<CONF
# written by test/packaging/run.sh
dbname = host=$cluster port=$PORT dbname=pkgtest user=postgres
slot = ordersync_pkgtest
create-slot = true
sink = file:$STATE/events.jsonl
log-level = info
CONF
"$here/notify_listen.py" "$work/notify.sock" 60 >"$work/notify.out" 2>&1 &
listen_pid=$!
for _ in $(seq 100); do [ -e "$work/notify.sock.ready" ] && break; sleep 0.1; done
(cd "$STATE" && exec setpriv --reuid=ordersyncd --regid=ordersyncd --init-groups --no-new-privs \
	env -i PATH=/usr/bin:/bin NOTIFY_SOCKET="$work/notify.sock" WATCHDOG_USEC=4000000 \
	"${cmd[@]}") >"$work/relay.out" 2>"$work/relay.log" &
relay_pid=$!
t0=$(date +%s%N)
ready_ms=
for _ in $(seq 300); do
	if [ -z "$ready_ms" ] && grep -q '^READY=1$' "$work/notify.out"; then
		ready_ms=$((($(date +%s%N) - t0) / 1000000))
	fi
	[ -n "$ready_ms" ] && [ "$(sed -n '/^READY=1$/,$p' "$work/notify.out" | grep -c '^WATCHDOG=1$')" -ge 2 ] && break
	kill -0 "$relay_pid" 2>/dev/null || break
	sleep 0.1
done
who=$(ps -o uid= -p "$relay_pid" 2>/dev/null | tr -d ' ')
if [ -n "$ready_ms" ] && [ "$who" = "$(id -u ordersyncd)" ]; then
	pass "relay_ready (READY=1 after $ready_ms ms, as uid $who: ordersyncd)"
else
	fail relay_ready "user=$who notify: $(tr '\n' ' ' <"$work/notify.out")" "$(tail -20 "$work/relay.log")"
fi
if [ "$(sed -n '/^READY=1$/,$p' "$work/notify.out" | grep -c '^WATCHDOG=1$')" -ge 2 ] &&
	grep -q -- "--status-interval lowered to 2000 ms" "$work/relay.log"; then
	pass relay_watchdog
else
	fail relay_watchdog "notify: $(tr '\n' ' ' <"$work/notify.out")" "$(tail -5 "$work/relay.log")"
fi
if [ "$(stat -c %U "$STATE/events.jsonl" 2>/dev/null)" = ordersyncd ]; then
	pass relay_state_dir
else
	fail relay_state_dir "$(ls -la "$STATE")"
fi
kill -TERM "$relay_pid" 2>/dev/null
wait "$relay_pid"
rc=$?
relay_pid=
wait "$listen_pid"
listen_pid=
if [ "$rc" = 0 ] && grep -q '^STOPPING=1$' "$work/notify.out"; then
	pass relay_stop
else
	fail relay_stop "exit $rc; notify: $(tr '\n' ' ' <"$work/notify.out")" "$(tail -5 "$work/relay.log")"
fi

phase relay
# --- leave the machine as it was ---
"$top/scripts/cluster.sh" stop "$cluster" >/dev/null 2>&1
trap - EXIT
work_keep=$(mktemp -d /tmp/ordersync-pkgcheck.XXXXXX)
cp "$work/before.sha" "$work_keep/"
(cd "$work/backup" && find . -type f | sort) >"$work_keep/files"
cleanup
leftover=()
for p in "${PKGS[@]}"; do
	grep -qE 'ok (installed|config-files|unpacked|half-.*)$' <<<"$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" &&
		leftover+=("$p")
done
after=$(cd / && xargs -r sha256sum <"$work_keep/files" 2>&1 | sort -k2)
if [ ${#leftover[@]} -eq 0 ] && [ "$after" = "$(cat "$work_keep/before.sha")" ] &&
	{ [ "$user_existed" = 1 ] || ! getent passwd ordersyncd >/dev/null; } && [ ! -e /etc/ordersync ]; then
	pass "restored ($(wc -l <"$work_keep/files") files put back)"
else
	fail restored "left: ${leftover[*]}" "$(diff <(cat "$work_keep/before.sha") <(echo "$after") | head)"
fi
rm -rf "$work_keep"
phase restore
echo "    packaging suite: $(($(date +%s) - started)) s (${phases# }); load average $(cut -d' ' -f1-3 /proc/loadavg)"
