#!/usr/bin/env bash
# End to end: `ferry serve` of the demo's bundles (one per Windows version
# plus a linux/amd64 one) is the only registry a node needs:
#   - skopeo reads every image by digest, and copies each tag (all platforms);
#   - crane reads every manifest by digest and pulls the linux images;
#   - containerd, with a hosts.toml mirror for the images' original registry
#     pointing at ferry serve (TLS, the test CA) and that registry stopped,
#     pulls the original names for linux and windows and finds them complete;
#   - `ferry bundle` pulls from ferry serve per Windows version and for linux
#     and gets the digests of the bundles served;
#   - curl: HEAD, ranges (206, 416), unknown names and digests (404 with the
#     spec's codes), writes (405), and a damaged blob is refused, not served.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=SCRIPTDIR/lib/e2e.sh
source scripts/lib/e2e.sh
e2e_begin e2e-serve docker-registry containerd ctr skopeo curl openssl perl jq sha256sum go
trap '_svc_stop_pid ferry-serve; _svc_stop_pid ferry-serve-bad; stop_services; rm -rf "$work"' EXIT
start_registry
start_containerd
use_registry_auth
export SSL_CERT_FILE=$FERRY_REGISTRY_CA
reg=$FERRY_REGISTRY
ca=$FERRY_REGISTRY_CA
certs=$FERRY_SVC_DIR/registry/certs # the test CA's server cert is for 127.0.0.1

"$ferry" sample push --registry "$reg" --size $((3 << 20)) >/dev/null
pause_list_digest=$(skopeo inspect --raw --cert-dir "$FERRY_REGISTRY_CERT_DIR" --authfile "$FERRY_REGISTRY_AUTHFILE" \
	"docker://$reg/rancher/mirrored-pause:3.6" | sha256sum | cut -d' ' -f1)
images() { # images HOST: the rke2 windows image list, as e2e-bundle.sh has it
	printf '%s\n' "$1/rancher/rke2-runtime:v1.31.2-rke2r1" "$1/rancher/mirrored-pause:3.6@sha256:$pause_list_digest" \
		"$1/rancher/rke2-windows-scratch:v1.31.2"
}
images "$reg" >"$work/windows-images.txt"
# The same set with distributable Windows base layers (as Microsoft ships
# them since 2023): containerd 1.6 fetches foreign layers from their URLs
# only, so a node without internet pulls only these.
"$ferry" sample push --registry "$reg/modern" --distributable-base --size $((1 << 20)) >/dev/null
out=$work/dist
mkdir -p "$out"
check "bundle windows 1809,ltsc2022,2025 (zstd)" "$ferry" bundle -f "$work/windows-images.txt" --windows-version 1809,ltsc2022,2025 \
	-o "$out/rke2-windows-{version}-amd64-images.tar.zst" --cache "$work/cache" -q
check "bundle windows 1809,ltsc2022,2025 with distributable bases" "$ferry" bundle "$reg/modern/rancher/rke2-runtime:v1.31.2-rke2r1" \
	"$reg/modern/rancher/mirrored-pause:3.6" --windows-version 1809,ltsc2022,2025 -o "$out/modern-windows-{version}.tar.zst" --cache "$work/cache" -q
check "bundle linux/amd64 (plain tar)" "$ferry" bundle "$reg/rancher/rke2-runtime:v1.31.2-rke2r1" "$reg/rancher/mirrored-pause:3.6" \
	--platform linux/amd64 -o "$out/rke2-images.linux-amd64.tar" --cache "$work/cache" -q
mapfile -t bundles < <(ls "$out"/*.tar*)

# serve_bundles NAME LOG ARGS... : start ferry serve on a free port; sets srv.
serve_bundles() {
	local name=$1 log=$2
	shift 2
	_svc_start "$name" "$log" "$ferry" serve --addr 127.0.0.1:0 "$@"
	srv=
	for _ in $(seq 1 100); do
		srv=$(sed -n 's#^serving .* at https*://##p' "$log")
		[ -n "$srv" ] && return 0
		_svc_alive "$name" || break
		sleep 0.1
	done
	cat "$log"
	return 1
}
serve_bundles ferry-serve "$work/serve.log" --tls-cert "$certs/server.pem" --tls-key "$certs/server-key.pem" -v "${bundles[@]}"
ok "ferry serve at https://$srv"
grep '^opened' "$work/serve.log" | sed 's/^/     /'
check "plain HTTP beyond loopback is refused" bash -c "! '$ferry' serve --addr 0.0.0.0:0 '${bundles[0]}'"

# Every image of every bundle, by digest under its name (host dropped).
for b in "${bundles[@]}"; do
	"$ferry" list --format json "$b" | jq -r '.images[] | "\(.names[0]) \(.digest)"'
done | sed 's#^[^/]*/##; s#[:@][^ /]* # #' | sort -u >"$work/want"
n=0
while read -r repo digest; do
	got=$(skopeo inspect --raw --cert-dir "$certs/.." --tls-verify=true "docker://$srv/$repo@$digest" 2>"$work/last.log" | sha256sum | cut -d' ' -f1) || true
	if [ "sha256:$got" = "$digest" ]; then n=$((n + 1)); else bad "skopeo inspect $repo@$digest hashes to sha256:$got"; fi
done <"$work/want"
[ "$n" -gt 0 ] && ok "skopeo inspect --raw: $n images by digest, bytes hash to the bundle's digests"
skopeo_() { skopeo "$@" --src-cert-dir "$work/certs"; }
mkdir -p "$work/certs" && cp "$ca" "$work/certs/ca.crt"
for tag in rancher/rke2-runtime:v1.31.2-rke2r1 rancher/mirrored-pause:3.6 rancher/rke2-windows-scratch:v1.31.2; do
	check "skopeo copy --all docker://$srv/$tag (checks every blob digest)" \
		skopeo copy -q --all --src-cert-dir "$work/certs" "docker://$srv/$tag" "oci:$work/oci-$RANDOM:x"
done
# crane, installed into the work dir: every image's manifest by digest,
# and the linux images pulled whole (each layer checked against its digest).
crane=$work/bin/crane
if GOBIN=$work/bin go install github.com/google/go-containerregistry/cmd/crane@v0.22.1 >"$work/last.log" 2>&1; then
	n=0
	while read -r repo digest; do
		got=$("$crane" manifest "$srv/$repo@$digest" 2>"$work/last.log" | sha256sum | cut -d' ' -f1) || true
		if [ "sha256:$got" = "$digest" ]; then n=$((n + 1)); else bad "crane manifest $repo@$digest hashes to sha256:$got"; fi
	done <"$work/want"
	[ "$n" -gt 0 ] && ok "crane manifest: $n images by digest, bytes hash to the bundle's digests"
	for tag in rancher/rke2-runtime:v1.31.2-rke2r1 rancher/mirrored-pause:3.6; do
		check "crane pull --platform linux/amd64 $srv/$tag" "$crane" pull --platform linux/amd64 --format oci "$srv/$tag" "$work/crane-$RANDOM"
	done
else
	bad "go install crane"; tail "$work/last.log"
fi

# The per-version bundles' runtime images together make one list.
list=$(curl -sf --cacert "$ca" -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
	"https://$srv/v2/rancher/rke2-runtime/manifests/v1.31.2-rke2r1")
plats=$(jq -r '[.manifests[].platform | "\(.os):\(."os.version" // "")"] | sort | join(",")' <<<"$list")
check "rke2-runtime tag lists linux and the three Windows builds ($plats)" test "$plats" = "linux:,windows:10.0.17763.5458,windows:10.0.20348.2322,windows:10.0.26100.2894"

# ferry bundle from ferry serve: the same images, per version and for linux.
images "$srv" >"$work/served-images.txt"
re=$work/rebundled
check "ferry bundle windows 1809,ltsc2022,2025 from ferry serve" "$ferry" bundle -f "$work/served-images.txt" \
	--windows-version 1809,ltsc2022,2025 -o "$re/{version}.tar.zst" --cache "$work/cache-served" -q
check "ferry bundle linux/amd64 from ferry serve" "$ferry" bundle "$srv/rancher/rke2-runtime:v1.31.2-rke2r1" "$srv/rancher/mirrored-pause:3.6" \
	--platform linux/amd64 -o "$re/linux.tar" --cache "$work/cache-served" -q
digests() { "$ferry" list --format json "$1" | jq -r '.images[] | "\(.names[0] | sub("^[^/]*/"; "")) \(.digest)"' | sort; }
for v in 1809 ltsc2022 2025; do
	check "ferry bundle $v via serve: digests equal the served bundle's" \
		diff <(digests "$out/rke2-windows-$v-amd64-images.tar.zst") <(digests "$re/$v.tar.zst")
done
check "ferry bundle linux via serve: digests equal the served bundle's" diff <(digests "$out/rke2-images.linux-amd64.tar") <(digests "$re/linux.tar")

# The node that boots from files: its containerd knows only a mirror for the
# images' original registry, and that registry is gone.
hosts=$work/hosts
mkdir -p "$hosts/$reg"
cat >"$hosts/$reg/hosts.toml" <<TOML
server = "https://$reg"

[host."https://$srv"]
  capabilities = ["pull", "resolve"]
  ca = "$ca"
TOML
_svc_stop_pid registry
ctr_() { ctr --address "$FERRY_CTR_ADDRESS" "$@"; }
pull() { # pull PLATFORM REF: then the image must be complete for the platform
	ctr_ -n node images pull --hosts-dir "$hosts" --snapshotter native --platform "$1" "$2" || return 1
	if [ "$1" = linux/amd64 ]; then
		ctr_ -n node images check | grep -F "$2 " | grep -q complete
	else
		# images check judges by the host's platform; mounting unpacks the
		# Windows child, recomputing every layer's diff_id.
		local mnt=$work/mnt-$RANDOM
		mkdir -p "$mnt"
		ctr_ -n node images mount --snapshotter native --platform "$1" "$2" "$mnt" &&
			ctr_ -n node images unmount --rm "$mnt"
	fi
}
for ref in rancher/rke2-runtime:v1.31.2-rke2r1 rancher/mirrored-pause:3.6; do
	check "ctr pull linux/amd64 $reg/$ref through the mirror, check complete" pull linux/amd64 "$reg/$ref"
done
for ref in modern/rancher/rke2-runtime:v1.31.2-rke2r1 modern/rancher/mirrored-pause:3.6 rancher/rke2-windows-scratch:v1.31.2; do
	check "ctr pull windows/amd64 $reg/$ref through the mirror, unpacks" pull windows/amd64 "$reg/$ref"
done
check "ctr pull windows/amd64 of a foreign base layer goes to its URL (containerd 1.6), not to a registry" bash -c "
	out=\$(ctr --address '$FERRY_CTR_ADDRESS' -n node images pull --hosts-dir '$hosts' --snapshotter native --platform windows/amd64 \
		'$reg/rancher/rke2-runtime:v1.31.2-rke2r1' 2>&1) && exit 1; grep -q 'mcr.microsoft.com' <<<\"\$out\""
check "ctr: the pulls went to ferry serve" grep -q 'path=/v2/rancher/rke2-runtime/manifests/v1.31.2-rke2r1' "$work/serve.log"

# The API edges, with curl.
c() { curl -s --cacert "$ca" -o "$work/body" -D "$work/headers" -w '%{http_code}' "$@"; }
linux_runtime=$("$ferry" list --format json "$out/rke2-images.linux-amd64.tar" | jq -r '.images[] | select(.names[0] | contains("rke2-runtime")) | .digest')
layer=$(curl -sf --cacert "$ca" "https://$srv/v2/rancher/rke2-runtime/manifests/$linux_runtime" | jq -r '.layers[-1].digest')
blob=https://$srv/v2/rancher/rke2-runtime/blobs/$layer
size=$(c -I "$blob" >/dev/null; sed -n 's/^[Cc]ontent-[Ll]ength: *\([0-9]*\).*/\1/p' "$work/headers")
check "HEAD blob: 200 with its size and digest" bash -c "[ \$(curl -s --cacert '$ca' -I -o /dev/null -w '%{http_code}' '$blob') = 200 ] && grep -qi '^docker-content-digest: $layer' '$work/headers' && [ '${size:-0}' -gt 0 ]"
check "range bytes=100-199: 206, 100 bytes equal to the blob's" bash -c "
	[ \$(curl -s --cacert '$ca' -H 'Range: bytes=100-199' -o '$work/part' -w '%{http_code}' '$blob') = 206 ] &&
	curl -sf --cacert '$ca' '$blob' -o '$work/whole' && cmp '$work/part' <(tail -c +101 '$work/whole' | head -c 100) &&
	[ \"sha256:\$(sha256sum <'$work/whole' | cut -d' ' -f1)\" = '$layer' ]"
check "range past the end: 416" test "$(c -H "Range: bytes=$size-" "$blob")" = 416
check "unknown name: 404 NAME_UNKNOWN" bash -c "[ \$(curl -s --cacert '$ca' -o '$work/b' -w '%{http_code}' 'https://$srv/v2/nope/manifests/1') = 404 ] && jq -e '.errors[0].code == \"NAME_UNKNOWN\"' '$work/b'"
check "unknown tag: 404 MANIFEST_UNKNOWN" bash -c "[ \$(curl -s --cacert '$ca' -o '$work/b' -w '%{http_code}' 'https://$srv/v2/rancher/rke2-runtime/manifests/nope') = 404 ] && jq -e '.errors[0].code == \"MANIFEST_UNKNOWN\"' '$work/b'"
check "unknown blob: 404 BLOB_UNKNOWN" bash -c "[ \$(curl -s --cacert '$ca' -o '$work/b' -w '%{http_code}' 'https://$srv/v2/rancher/rke2-runtime/blobs/sha256:$(printf '0%.0s' {1..64})') = 404 ] && jq -e '.errors[0].code == \"BLOB_UNKNOWN\"' '$work/b'"
check "push: 405 UNSUPPORTED" bash -c "[ \$(curl -s --cacert '$ca' -X POST -o '$work/b' -w '%{http_code}' 'https://$srv/v2/rancher/rke2-runtime/blobs/uploads/') = 405 ] && jq -e '.errors[0].code == \"UNSUPPORTED\"' '$work/b'"
check "tags/list n=1: one tag and a Link to the next page" bash -c "[ \$(curl -s --cacert '$ca' -o '$work/b' -D '$work/h' -w '%{http_code}' 'https://$srv/v2/_catalog?n=1') = 200 ] && jq -e '.repositories | length == 1' '$work/b' && grep -qi '^link: .*rel=\"next\"' '$work/h'"

# Stop by PID: SIGTERM is a graceful shutdown, exit 0.
pid=$(_svc_pid ferry-serve)
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
rm -f "$FERRY_SVC_DIR/pids/ferry-serve.pid"
check "ferry serve exits 0 on SIGTERM" test "$status" = 0

# A damaged blob (one byte flipped in the plain tar bundle) is refused.
bad=$work/damaged.tar
cp "$out/rke2-images.linux-amd64.tar" "$bad"
hex=${layer#sha256:}
# Its tar header is the occurrence of its name on a 512-byte boundary
# (manifest.json names it too).
off=$(grep -abo "blobs/sha256/$hex" "$bad" | cut -d: -f1 | awk '$1 % 512 == 0 {print; exit}')
# The data follows its 512-byte header; flip a byte 1000 bytes in.
at=$(( (off / 512 + 1) * 512 + 1000 ))
printf "$(printf '\\x%02x' $(( $(od -An -tu1 -j "$at" -N1 "$bad") ^ 1 )))" | dd of="$bad" bs=1 seek="$at" conv=notrunc status=none
serve_bundles ferry-serve-bad "$work/serve-bad.log" "$bad"
check "damaged blob: the full GET never completes" bash -c "! curl -sf -o /dev/null 'http://$srv/v2/rancher/rke2-runtime/blobs/$layer'"
check "damaged blob: then 500, ranges too" bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' -H 'Range: bytes=0-9' 'http://$srv/v2/rancher/rke2-runtime/blobs/$layer') = 500 ]"
check "damaged blob: logged" grep -q "does not match its digest" "$work/serve-bad.log"
_svc_stop_pid ferry-serve-bad

e2e_end
