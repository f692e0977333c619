#!/usr/bin/env bash
# Checks for the programs ctid needs and installs missing ones with apt-get when run as root
# on Debian; otherwise prints the exact command and fails.
#   deps.sh server   PostgreSQL server binaries (make run)
#   deps.sh test     the same, plus what tests need: chromium, sipp, baresip (make test)
set -euo pipefail

missing=()
have_postgres() {
	command -v postgres >/dev/null 2>&1 && return 0
	compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null
}
have_postgres || missing+=(postgresql)
if [[ "${1:-server}" == test ]]; then
	command -v chromium >/dev/null 2>&1 || missing+=(chromium)
	command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
	command -v baresip >/dev/null 2>&1 || missing+=(baresip-core)
fi
(( ${#missing[@]} == 0 )) && exit 0

cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
	echo "deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	exit 0
fi
echo "deps: missing ${missing[*]}. Install them with:" >&2
echo "  sudo sh -c '$cmd'" >&2
exit 1
