#!/usr/bin/env bash
# e2e-manifest.sh - `ferry manifest create/inspect/verify` against a real
# distribution registry (TLS + htpasswd), cross-checked with skopeo and
# containerd:
#   - push the sample set's per-platform tags (linux/amd64 + windows/amd64
#     for 1809, ltsc2022, 2025; Windows base layers are foreign)
#   - create a Docker manifest list and an OCI index (the latter into
#     another repository, so children are mounted across repositories)
#   - inspect (table, --raw, json) and verify them
#   - skopeo sees the digest ferry printed; ctr pulls every platform
#   - verify fails (exit 1) on a list with a wrong os.version, a duplicate
#     entry, and a deleted child; the registry's MANIFEST_BLOB_UNKNOWN
#     refusal of a list without its children; usage errors exit 2
# Needs root (containerd). Missing tools SKIP locally and FAIL with CI=true.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$here/.." && pwd)
# shellcheck source=lib/services.sh
. "$here/lib/services.sh"
# shellcheck source=lib/oci.sh
. "$here/lib/oci.sh"

require_tools go docker-registry containerd ctr skopeo openssl curl perl jq sha256sum || exit 0
if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = true ]; then echo "FAIL: containerd needs root (CI=true)" >&2; exit 1; fi
  echo "SKIP: containerd needs root"
  exit 0
fi

# Short path: the containerd socket lives under it (sun_path limit).
work=$(mktemp -d /tmp/ferry-mf.XXXXXX)
ferry_svc_init "$work"
trap 'stop_services; rm -rf "$work"' EXIT

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

step "build ferry"
(cd "$repo_root" && go build -o "$work/ferry" ./cmd/ferry)

step "start registry (TLS + auth) and containerd"
start_registry
start_containerd
use_registry_auth # ferry and skopeo find the credentials through DOCKER_CONFIG
export SSL_CERT_FILE=$FERRY_REGISTRY_CA
reg=$FERRY_REGISTRY
creds=$FERRY_REGISTRY_USER:$FERRY_REGISTRY_PASS
ferry() { "$work/ferry" "$@"; }
ctr_() { ctr --address "$FERRY_CTR_ADDRESS" "$@"; }
reg_curl() { curl -sS --cacert "$FERRY_REGISTRY_CA" -u "$creds" "$@"; }

# expect CODE LOG CMD... : run CMD with stdout in LOG and stderr in
# LOG.err, want exit CODE.
expect() {
  local want=$1 log=$2 got=0
  shift 2
  "$@" >"$log" 2>"$log.err" || got=$?
  if [ "$got" != "$want" ]; then
    cat "$log" "$log.err" >&2
    fail "exit $got, want $want: $*"
  fi
}

# put_list REPO TAG MEDIATYPE FILE : PUT a hand-made list, print HTTP code.
put_list() {
  reg_curl -o "$work/put.out" -w '%{http_code}' -X PUT -H "Content-Type: $3" \
    --data-binary "@$4" "https://$reg/v2/$1/manifests/$2"
}

step "push the sample set"
ferry sample push --registry "$reg" | tee "$work/sample.txt"
base=$reg/rancher/rke2-runtime:v1.31.2-rke2r1
srcs=("$base-linux-amd64" "$base-windows-1809" "$base-windows-ltsc2022" "$base-windows-2025")
require=linux/amd64,windows/amd64:1809,windows/amd64:ltsc2022,windows/amd64:2025
docker_list=application/vnd.docker.distribution.manifest.list.v2+json
oci_index=application/vnd.oci.image.index.v1+json

step "push a linux/arm64 OCI image (skopeo)"
arm64=$reg/rancher/rke2-runtime:v1.31.2-rke2r1-linux-arm64
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$work/policy.json"
make_oci_image "$work/oci-arm64" v1 "hello from arm64" arm64 >/dev/null
skopeo --policy "$work/policy.json" copy --quiet --dest-cert-dir "$FERRY_REGISTRY_CERT_DIR" \
  --dest-creds "$creds" "oci:$work/oci-arm64:v1" "docker://$arm64"

step "create a Docker manifest list"
target=$reg/rancher/rke2-runtime:v1.31.2
ferry manifest create --dry-run "$target" "${srcs[@]}" >"$work/dry.json"
jq -e --arg mt "$docker_list" '.mediaType == $mt and (.manifests | length) == 4' "$work/dry.json" >/dev/null ||
  fail "dry run printed $(cat "$work/dry.json")"
code=$(reg_curl -o /dev/null -w '%{http_code}' -H "Accept: $docker_list" "https://$reg/v2/rancher/rke2-runtime/manifests/v1.31.2")
[ "$code" = 404 ] || fail "--dry-run pushed the list (HTTP $code)"
digest=$(ferry manifest create "$target" "${srcs[@]}")
echo "list digest $digest"
[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || fail "create printed '$digest'"
# The dry run printed the exact bytes, plus a newline.
[ "$digest" = "sha256:$(head -c -1 "$work/dry.json" | sha256sum | cut -d' ' -f1)" ] ||
  fail "dry run showed a different list than was pushed"

step "create an OCI index in another repository (cross-repository mounts)"
oci_target=$reg/mirror/rke2-runtime:v1.31.2
oci_digest=$(ferry manifest create --list-type oci "$oci_target" "${srcs[@]}")
echo "index digest $oci_digest"
rlog=$FERRY_SVC_DIR/logs/registry.log
mounts=$(grep -cE 'http.request.method=POST .*uri="/v2/mirror/rke2-runtime/blobs/uploads/\?[^"]*mount=.*http.response.status=201' "$rlog" || true)
uploads=$(grep -cE 'http.request.method=PATCH .*uri="/v2/mirror/rke2-runtime/blobs/uploads/' "$rlog" || true)
echo "blobs mounted into mirror/rke2-runtime: $mounts, uploaded: $uploads"
if [ "$mounts" = 0 ] || [ "$uploads" != 0 ]; then fail "children were not copied by cross-repository mount"; fi

step "inspect"
ferry manifest inspect "$target" | tee "$work/inspect.txt"
for p in linux/amd64 windows/amd64:10.0.17763.5458 windows/amd64:10.0.20348.2322 windows/amd64:10.0.26100.2894; do
  grep -q "^$p " "$work/inspect.txt" || fail "inspect table lacks $p"
done
grep -qF "\"$digest\": [\"v1.31.2\"]" "$work/inspect.txt" || fail "inspect lacks the promotion line"
[ "sha256:$(ferry manifest inspect --raw "$target" | sha256sum | cut -d' ' -f1)" = "$digest" ] ||
  fail "--raw bytes do not hash to $digest"
ferry manifest inspect --format json "$oci_target" >"$work/inspect.json"
jq -e --arg d "$oci_digest" --arg mt "$oci_index" \
  '.digest == $d and .mediaType == $mt and .dmap[$d] == ["v1.31.2"] and (.manifests | length) == 4' \
  "$work/inspect.json" >/dev/null || fail "inspect json: $(cat "$work/inspect.json")"

step "foreign layers stayed out of the mirror"
child=$(jq -r '.manifests[] | select(.platform["os.version"] == "10.0.17763.5458") | .digest' "$work/inspect.json")
foreign=$(reg_curl -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "https://$reg/v2/mirror/rke2-runtime/manifests/$child" |
  jq -r '.layers[] | select(.mediaType | endswith("foreign.diff.tar.gzip")) | .digest')
[ -n "$foreign" ] || fail "sample 1809 image has no foreign layer"
code=$(reg_curl -o /dev/null -w '%{http_code}' -I "https://$reg/v2/mirror/rke2-runtime/blobs/$foreign")
[ "$code" = 404 ] || fail "foreign layer was copied without --allow-nondistributable (HTTP $code)"

step "verify passes"
ferry manifest verify "$target" --require "$require" | tee "$work/verify.txt"
printf '# rke2 platforms\nlinux/amd64\nwindows/amd64:1809  # ltsc2019\nwindows/amd64:ltsc2022\nwindows/amd64:2025\n' >"$work/platforms.txt"
ferry manifest verify "$oci_target" --require-file "$work/platforms.txt" --format json >"$work/verify.json"
jq -e '.schemaVersion == 1 and .ok and .errors == 0 and ([.checks[] | select(.check == "required")] | length) == 4' \
  "$work/verify.json" >/dev/null || fail "verify json: $(cat "$work/verify.json")"

step "skopeo sees the digests ferry printed"
skopeo_digest() {
  echo "sha256:$(skopeo inspect --raw --cert-dir "$FERRY_REGISTRY_CERT_DIR" --creds "$creds" "docker://$1" | sha256sum | cut -d' ' -f1)"
}
got=$(skopeo_digest "$target")
[ "$got" = "$digest" ] || fail "skopeo: $target is $got, ferry printed $digest"
got=$(skopeo_digest "$oci_target")
[ "$got" = "$oci_digest" ] || fail "skopeo: $oci_target is $got, ferry printed $oci_digest"
echo "skopeo agrees: $digest $oci_digest"

step "a list as source, filtered by --platform"
ferry manifest create "$reg/filtered/rke2-runtime:v1" "$reg/rancher/rke2-runtime:v1.31.2-rke2r1" \
  --platform linux/amd64,windows/amd64:1809 >/dev/null
ferry manifest inspect --format json "$reg/filtered/rke2-runtime:v1" |
  jq -e '[.manifests[].platform | .os + ":" + (.["os.version"] // "")] == ["linux:", "windows:10.0.17763.5458"]' >/dev/null ||
  fail "filtered list is not linux + the newest 1809"
ferry manifest verify "$reg/filtered/rke2-runtime:v1" --require linux/amd64,windows/amd64:1809 >/dev/null

step "Docker and OCI children mix only with --format"
mixed=$reg/rancher/rke2-runtime:v1.31.2-linux
expect 2 "$work/mixed.txt" ferry manifest create "$mixed" "$base-linux-amd64" "$arm64"
grep -q 'mixed Docker and OCI manifests' "$work/mixed.txt.err" || fail "mix not refused: $(cat "$work/mixed.txt.err")"
linux_digest=$(ferry manifest create --list-type oci "$mixed" "$base-linux-amd64" "$arm64")
ferry manifest verify "$mixed" --require linux/amd64,linux/arm64 --format json | jq -e .ok >/dev/null ||
  fail "linux index does not verify"

step "containerd pulls every platform"
ctr_pull() {
  ctr_ images pull --snapshotter "$FERRY_CTR_SNAPSHOTTER" --hosts-dir "$FERRY_CTR_HOSTS_DIR" \
    --user "$creds" "$@" >"$work/logs/pull.log" 2>&1 || { cat "$work/logs/pull.log" >&2; fail "ctr pull $*"; }
}
# ctr_ls_line REF DIGEST PLATFORM... : the image is listed with that digest
# and platforms (ctr names them without os.version).
ctr_ls_line() {
  local ref=$1 want=$2 line p
  shift 2
  line=$(ctr_ images ls | grep -F "$ref ") || fail "ctr images ls lacks $ref"
  echo "$line"
  echo "$line" | grep -qF "$want" || fail "containerd has another digest: $line"
  for p in "$@"; do
    echo "$line" | grep -qF "$p" || fail "ctr images ls shows no $p: $line"
  done
}
ctr_pull --all-platforms "$mixed"
ctr_ls_line "$mixed" "$linux_digest" linux/amd64 linux/arm64
ctr_ images check | grep -F "$mixed " | grep -q complete || fail "$mixed incomplete in containerd"
# The Windows base layers are foreign: their URLs (mcr.microsoft.com) are
# unreachable here, and containerd 1.6 does not fall back to the registry
# for them, so take every platform's manifest and config, and the layers
# of this host's platform only.
ctr_pull --all-metadata "$target"
ctr_ls_line "$target" "$digest" linux/amd64 windows/amd64
n=$(ctr_ content get "$digest" | jq '[.manifests[] | select(.platform.os == "windows")] | length')
[ "$n" = 3 ] || fail "containerd's copy of the list has $n Windows entries"
for child in $(jq -r '.manifests[].digest' "$work/dry.json"); do
  ctr_ content get "$child" >/dev/null || fail "containerd did not fetch child $child"
done

step "verify fails on a wrong os.version (exit 1)"
ferry manifest inspect --raw "$target" |
  jq '.manifests[1].platform["os.version"] = "10.0.20348.2322"' >"$work/wrong.json"
code=$(put_list rancher/rke2-runtime wrong-osversion "$docker_list" "$work/wrong.json")
[ "$code" = 201 ] || fail "PUT wrong-osversion: HTTP $code $(cat "$work/put.out")"
expect 1 "$work/wrong.txt" ferry manifest verify "$reg/rancher/rke2-runtime:wrong-osversion" --require "$require"
cat "$work/wrong.txt"
grep -q 'FAIL  required windows/amd64:10.0.17763: missing' "$work/wrong.txt" || fail "no missing 1809"
grep -q 'FAIL  config-platform: os.version "10.0.20348.2322" in the list, "10.0.17763.5458" in the config' "$work/wrong.txt" ||
  fail "no config-platform failure"

step "verify fails on a duplicate entry (exit 1)"
ferry manifest inspect --raw "$target" | jq '.manifests += [.manifests[0]]' >"$work/dup.json"
code=$(put_list rancher/rke2-runtime duplicate "$docker_list" "$work/dup.json")
[ "$code" = 201 ] || fail "PUT duplicate: HTTP $code $(cat "$work/put.out")"
expect 1 "$work/dup.txt" ferry manifest verify "$reg/rancher/rke2-runtime:duplicate" --require "$require" --format json
jq -e '[.checks[] | select(.ok == false) | .check] | sort == ["required", "unique", "unique"]' "$work/dup.txt" >/dev/null 2>&1 ||
  { cat "$work/dup.txt"; fail "duplicate not reported as required+unique"; }

step "the registry refuses a list without its children (MANIFEST_BLOB_UNKNOWN)"
code=$(put_list elsewhere/rke2-runtime v1 "$docker_list" "$work/dry.json")
if [ "$code" != 400 ] || ! grep -q MANIFEST_BLOB_UNKNOWN "$work/put.out"; then
  fail "expected 400 MANIFEST_BLOB_UNKNOWN, got HTTP $code $(cat "$work/put.out")"
fi
# ferry copies the children first, so the same list goes in.
ferry manifest create "$reg/elsewhere/rke2-runtime:v1" "${srcs[@]}" >/dev/null

step "verify fails on a deleted child (exit 1)"
gone=$(jq -r '.manifests[2].digest' "$work/dry.json")
code=$(reg_curl -o /dev/null -w '%{http_code}' -X DELETE "https://$reg/v2/elsewhere/rke2-runtime/manifests/$gone")
[ "$code" = 202 ] || fail "DELETE child: HTTP $code"
expect 1 "$work/gone.txt" ferry manifest verify "$reg/elsewhere/rke2-runtime:v1" --require "$require"
cat "$work/gone.txt"
grep -q 'FAIL  manifest: .*MANIFEST_UNKNOWN' "$work/gone.txt" || fail "missing child not reported"

step "refusals and usage errors (exit 2)"
# The sample's own list carries two revisions of 1809: one build, twice.
expect 2 "$work/e1.txt" ferry manifest create "$reg/x/y:v1" "$reg/rancher/rke2-runtime:v1.31.2-rke2r1"
grep -q 'duplicate platform' "$work/e1.txt.err" || fail "duplicate not refused: $(cat "$work/e1.txt.err")"
expect 2 "$work/e2.txt" ferry manifest verify "$reg/nope/nothing:v1"
expect 2 "$work/e3.txt" ferry manifest verify "$target" --require windows/amd64:95

echo
echo "PASS: e2e-manifest"
