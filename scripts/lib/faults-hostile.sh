# shellcheck shell=bash
# faults-hostile.sh - the hostile-registry and plain-HTTP cases of
# e2e-faults.sh, sourced by it (uses its $work, $ferry, $faultsrv, $certs).

echo "== hostile registry"
hlog=$work/logs/hostile.log
_svc_start hostile "$hlog" "$faultsrv" hostile -cert "$certs/server.pem" -key "$certs/server-key.pem" -stall 120s
wait_line "$hlog"
read -r hostile _ < <(head -1 "$hlog")

# hostile_case NAME PATTERN CMD... : CMD (writing to $work/h-NAME) must exit 2 within
# 60 s, under 100 MiB RSS, print PATTERN, and leave nothing at $out.
hostile_case() {
	local name=$1 pattern=$2 rc=0 rss secs
	shift 2
	local dir=$work/h-$name
	mkdir -p "$dir"
	/usr/bin/time -f '%M %e' -o "$dir/time" timeout 120 "$@" >"$dir/stdout" 2>"$dir/stderr" || rc=$?
	read -r rss secs < <(tail -1 "$dir/time") || true
	rss=${rss:-0}
	local leftovers
	leftovers=$(find "$dir" -name 'out.tar.zst*' -o -name '.out.tar.zst.tmp-*' | head -3)
	if [ "$rc" = 2 ] && grep -qE "$pattern" "$dir/stderr" && [ "$rss" -lt $((100 * 1024)) ] &&
		perl -e "exit !($secs < 60)" && [ -z "$leftovers" ]; then
		ok "$name: exit 2 in ${secs}s, ${rss} KiB RSS: $(tail -c 300 "$dir/stderr" | tr '\n' ' ')"
	else
		bad "$name: exit $rc in ${secs}s, ${rss} KiB RSS, left [$leftovers]: $(tail -c 600 "$dir/stderr")"
	fi
}
for c in "stall-manifest|no response within 1s \(response timeout\).*gave up after 5 attempts" \
	"stall-layer|read timeout.*gave up after 5 attempts" \
	"huge-config|config sha256:[0-9a-f]+: too large: 68719476736 bytes, over the 8 MiB limit" \
	"lying-config|error verifying sha256 checksum" \
	"huge-manifest|manifest 127.0.0.1:[0-9]+/huge-manifest:t: too large: over the 8 MiB limit" \
	"foreign-loopback|address not allowed: localhost resolves to 127.0.0.1" \
	"redirect-loopback|address not allowed: localhost resolves to 127.0.0.1" \
	"redirect-http|redirect from https to plain http refused"; do
	s=${c%%|*}
	hostile_case "bundle $s" "${c#*|}" "$ferry" bundle "$hostile/$s:t" --platform linux/amd64 \
		-o "$work/h-bundle $s/out.tar.zst" --cache "$work/h-bundle $s/cache" -q "${net[@]}"
done
hostile_case "manifest create huge-config" "too large: 68719476736 bytes" \
	"$ferry" manifest create --dry-run "$hostile/x/list:t" "$hostile/huge-config:t" "${net[@]}"
hostile_case "manifest inspect stall-manifest" "response timeout.*gave up after 5 attempts" \
	"$ferry" manifest inspect "$hostile/stall-manifest:t" "${net[@]}"
hostile_case "manifest verify huge-manifest" "too large: over the 8 MiB limit" \
	"$ferry" manifest verify "$hostile/huge-manifest:t" "${net[@]}"
_svc_stop_pid hostile

echo "== plain HTTP needs --insecure-registry"
plog=$work/logs/plain.log
_svc_start plain "$plog" "$faultsrv" plain
wait_line "$plog"
plain=$(head -1 "$plog")
pauth=$(printf 'ferry:secret' | base64 -w0)
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$plain" "$pauth" >"$work/plain-config.json"
mkdir -p "$work/plain-docker" && cp "$work/plain-config.json" "$work/plain-docker/config.json"
rc=0
DOCKER_CONFIG=$work/plain-docker "$ferry" bundle "$plain/x/y:t" -o "$work/plain.tar" --cache "$work/plain-cache" -q \
	>/dev/null 2>"$work/plain.err" || rc=$?
plain_requests=$(grep -c '^.*request ' "$plog" || true)
if [ "$rc" = 2 ] && grep -q -- "pass --insecure-registry $plain" "$work/plain.err" && [ "$plain_requests" = 0 ]; then
	ok "unnamed plain-HTTP registry refused, no request sent: $(cat "$work/plain.err")"
else
	bad "unnamed plain-HTTP registry: exit $rc, $plain_requests requests: $(cat "$work/plain.err")"
fi
DOCKER_CONFIG=$work/plain-docker "$ferry" bundle "$plain/x/y:t" -o "$work/plain.tar" --cache "$work/plain-cache" -q \
	--insecure-registry "$plain" >/dev/null 2>&1 || true
check "named plain-HTTP registry is spoken to, with credentials" grep -q 'credentials=true' "$plog"
_svc_stop_pid plain
