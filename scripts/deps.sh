#!/usr/bin/env bash
# scripts/deps.sh — install the Debian packages ordersync needs to build,
# test and demo, only when they are missing (idempotent, safe to rerun).
#
# Usage: scripts/deps.sh [build|test|demo|bench|all]   (default: all)
set -euo pipefail

want=(
	make gcc g++ pkg-config
	postgresql-15 postgresql-server-dev-15 postgresql-contrib
	postgresql-15-wal2json postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
	libjson-c-dev libyajl-dev libmicrohttpd-dev libcmocka-dev libcurl4-openssl-dev
	libssl-dev librdkafka-dev librabbitmq-dev uthash-dev libsimdjson-dev
	kcat rabbitmq-server amqp-tools
	nats-server libnats-dev wrk valgrind
	clang libclang-rt-14-dev
	python3 curl procps bc
	debhelper dpkg-dev fakeroot lintian libsystemd-dev help2man systemd man-db
)

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "ordersync: missing Debian packages: ${missing[*]}" >&2
	echo "ordersync: run 'make deps' as root, or: apt-get install ${missing[*]}" >&2
	exit 1
fi

echo "ordersync: installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Update the lists once per hour at most: a fresh machine has none.
if [ ! -e /var/lib/apt/lists/lock ] || [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -60 2>/dev/null | head -1)" ]; then
	apt-get update -q >/dev/null
fi
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
echo "ordersync: packages installed"
