#!/usr/bin/env bash
# Runs every ferry test: vet, unit tests (in-memory registry), then the
# end-to-end suites against real services (distribution registry with TLS
# and htpasswd, containerd, skopeo) that scripts/lib/services.sh starts on
# loopback. With CI=true a missing tool fails the run instead of skipping.
# Unit tests run with the race detector (FERRY_RACE=0 turns it off for a
# quick local run).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go vet"
go vet ./...
race=-race
[ "${FERRY_RACE:-1}" = 0 ] && race=
echo "== unit tests ${race}"
go test -count=1 -timeout 30m $race ./...

status=0
for e2e in scripts/e2e-*.sh; do
	echo "== ${e2e}"
	if ! bash "$e2e"; then
		echo "FAIL: ${e2e}"
		status=1
	fi
done
exit "$status"
