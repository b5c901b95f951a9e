# shellcheck shell=bash
# e2e.sh - the frame every end-to-end suite shares: real services on
# loopback, a work dir removed on exit, a freshly built ferry, and checks
# that are counted and summed up as "NAME: N passed, N failed".
#
#   source scripts/lib/e2e.sh
#   e2e_begin NAME TOOL...     # skips (or fails under CI=true) without the tools
#   check "what" command...    # ok/FAIL line, output shown on failure
#   e2e_end                    # summary; non-zero exit if anything failed

# shellcheck source=SCRIPTDIR/services.sh
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"

e2e_begin() {
	e2e_name=$1
	shift
	require_tools "$@" || exit 0
	work=$(mktemp -d "/tmp/ferry-$e2e_name.XXXXXX")
	ferry_svc_init "$work"
	trap 'stop_services; rm -rf "$work"' EXIT
	passed=0 failed=0
	go build -o "$work/ferry" ./cmd/ferry
	ferry=$work/ferry # used by the suites that source this file
	export ferry
}

ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
check() {
	local what=$1
	shift
	if "$@" >"$work/last.log" 2>&1; then ok "$what"; else
		bad "$what"
		sed 's/^/     /' "$work/last.log" | tail -20
	fi
}

e2e_end() {
	echo "$e2e_name: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
