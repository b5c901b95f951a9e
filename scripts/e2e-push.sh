#!/usr/bin/env bash
# End to end: `ferry push` loads bundles and image archives into a real
# distribution registry (TLS + htpasswd), then containerd installs from it
# as an air-gapped node would:
#   - bundle the sample set per Windows version (1809, ltsc2022, 2025) and
#     for linux/amd64 from a first registry, plus a docker-archive and an
#     OCI archive written by skopeo; then that registry goes away
#   - push the bundles one after another into a fresh registry: every
#     image's digest is the bundle's, the pause tag ends as the upstream
#     list byte for byte, the runtime tag as one list verified with every
#     platform, blobs shared across repositories are mounted
#   - a rerun uploads 0 blobs (ferry's summary and the registry log agree)
#   - the skopeo archives, a crane tarball (go-containerregistry's
#     tarball.Write) and podman-saved archives (podman load of a bundle,
#     then podman save) push with the digests they carry; an OCI layout
#     directory pushes, its image named only by a tag left out with a
#     warning unless --repository names it
#   - a push killed (-9) while blobs upload, then rerun: the rerun sends
#     only what was missing and the tag ends right
#   - containerd with a hosts.toml mirror pulls the original names (whose
#     registry is gone) from the private registry; ctr images check
# Needs root (containerd). Missing tools SKIP locally and FAIL with CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=SCRIPTDIR/lib/e2e.sh
source scripts/lib/e2e.sh
e2e_begin e2e-push docker-registry containerd ctr skopeo podman curl openssl perl go jq sha256sum
if [ "$(id -u)" != 0 ]; then
	if [ "${CI:-}" = true ]; then echo "FAIL: containerd needs root (CI=true)" >&2; exit 1; fi
	echo "SKIP: containerd needs root"
	exit 0
fi
start_registry
start_containerd
use_registry_auth
export SSL_CERT_FILE=$FERRY_REGISTRY_CA
src=$FERRY_REGISTRY
runtime=rancher/rke2-runtime:v1.31.2-rke2r1
pause=rancher/mirrored-pause:3.6
require=linux/amd64,windows/amd64:1809,windows/amd64:ltsc2022,windows/amd64:2025
policy=$work/policy.json
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$policy"
raw_digest() { # REF: sha256 of the manifest skopeo reads
	echo "sha256:$(skopeo inspect --raw --cert-dir "$FERRY_REGISTRY_CERT_DIR" --authfile "$FERRY_REGISTRY_AUTHFILE" \
		"docker://$1" | sha256sum | cut -d' ' -f1)"
}

"$ferry" sample push --registry "$src" --size $((1 << 20)) >/dev/null
pause_list=$(raw_digest "$src/$pause")
config_of() { skopeo inspect --raw --cert-dir "$FERRY_REGISTRY_CERT_DIR" --authfile "$FERRY_REGISTRY_AUTHFILE" "docker://$1" | jq -r .config.digest; }
linux_config=$(config_of "$src/$runtime-linux-amd64")
printf '%s\n' "$src/$runtime" "$src/$pause" "$src/rancher/rke2-windows-scratch:v1.31.2" >"$work/images.txt"
dist=$work/dist
mkdir -p "$dist"
check "bundle windows 1809,ltsc2022,2025" "$ferry" bundle -f "$work/images.txt" --windows-version 1809,ltsc2022,2025 \
	-o "$dist/win-{version}.tar.zst" --cache "$work/cache" -q
check "bundle linux/amd64 (gzip)" "$ferry" bundle "$src/$runtime" "$src/$pause" --platform linux/amd64 \
	-o "$dist/linux.tar.gz" --cache "$work/cache" -q
skopeo_copy() { skopeo --policy "$policy" copy --quiet --src-cert-dir "$FERRY_REGISTRY_CERT_DIR" "$@"; }
check "skopeo docker-archive" skopeo_copy "docker://$src/$runtime-linux-amd64" "docker-archive:$dist/docker.tar:docker.io/airgap/from-docker:v1"
check "skopeo oci-archive" skopeo_copy "docker://$src/$runtime-linux-amd64" "oci-archive:$dist/oci.tar:docker.io/airgap/from-oci:v1"
check "skopeo oci layout directory (named by tag only)" skopeo_copy "docker://$src/$runtime-linux-amd64" "oci:$dist/ocidir:v1"
bundles=("$dist/win-1809.tar.zst" "$dist/win-ltsc2022.tar.zst" "$dist/win-2025.tar.zst" "$dist/linux.tar.gz")

# A crane tarball of the Linux runtime, and podman's own archives of it
# (loaded from the bundle into vfs storage in the work dir; podman 4.3
# reads docker archives only uncompressed).
go build -o "$work/e2eimages" ./scripts/lib/e2eimages
check "crane tarball (tarball.Write)" bash -c "'$work/e2eimages' crane '$dist/linux.tar.gz' '$src/$runtime' docker.io/airgap/from-crane:v1 '$dist/crane.tar' >'$work/crane.digest'"
podman_() { podman --root "$work/podman/root" --runroot "$work/podman/run" --storage-driver vfs --events-backend file "$@"; }
gzip -dc "$dist/linux.tar.gz" >"$work/linux.tar"
check "podman load of the linux bundle" podman_ load -q -i "$work/linux.tar"
check "podman save docker-archive" podman_ save -q --format docker-archive -o "$dist/podman.tar" "$src/$runtime"
check "podman save oci-archive" podman_ save -q --format oci-archive -o "$dist/podman-oci.tar" "$src/$runtime"

# The source registry goes away; a fresh one is the private registry.
_svc_stop_pid registry
rm -rf "$FERRY_SVC_DIR/registry"
start_registry
use_registry_auth
export SSL_CERT_FILE=$FERRY_REGISTRY_CA
dst=$FERRY_REGISTRY
rlog=$FERRY_SVC_DIR/logs/registry.log
echo "bundled from $src (gone), pushing to $dst"

i=0
for b in "${bundles[@]}"; do
	i=$((i + 1))
	check "push $(basename "$b")" bash -c "'$ferry' push '$b' --registry '$dst' --format json -q >'$work/push$i.json'"
done
check "1809 push uploaded blobs, mounted shared ones" \
	jq -e '.bytesUploaded > 0 and .blobsUploaded > 0 and .blobsMounted > 0' "$work/push1.json"
check "registry log shows cross-repository mounts" \
	grep -qE 'http.request.method=POST .*mount=.*http.response.status=201' "$rlog"
check "ltsc2022 push merged the runtime tag" \
	jq -e --arg r "$dst/$runtime" '.images[] | select(.reference == $r) | .action == "merged"' "$work/push2.json"
check "pause tag is the upstream list, byte for byte" test "$(raw_digest "$dst/$pause")" = "$pause_list"
check "runtime tag verifies with every platform" "$ferry" manifest verify "$dst/$runtime" --require "$require"

# Every image of every bundle is in the registry with the bundle's digest.
for b in "${bundles[@]}"; do
	"$ferry" list --format json "$b" | jq -r '.images[] | .digest + " " + .names[0]' | while read -r digest ref; do
		repo=${ref#"$src"/}
		repo=${repo%:*}
		got=$(raw_digest "$dst/$repo@$digest")
		[ "$got" = "$digest" ] || echo "$(basename "$b"): $repo@$digest reads as $got"
	done
done >"$work/digests.txt"
check "every bundle digest is in the registry byte for byte" test ! -s "$work/digests.txt"

before=$(wc -l <"$rlog")
check "rerun of every bundle at once" bash -c "'$ferry' push ${bundles[*]} --registry '$dst' --format json -q >'$work/rerun.json'"
check "rerun uploads 0 blobs (summary)" jq -e '.blobsUploaded == 0 and .bytesUploaded == 0 and .blobsMounted == 0' "$work/rerun.json"
uploads=$(tail -n +"$((before + 1))" "$rlog" | grep -cE 'http.request.method=(PUT|PATCH|POST) ' || true)
check "rerun writes nothing (registry log: $uploads writes)" test "$uploads" = 0
check "rerun leaves the tags unchanged" jq -e '[.images[].action] | all(. == "unchanged")' "$work/rerun.json"

check "push the skopeo archives under a prefix" bash -c \
	"'$ferry' push '$dist/docker.tar' '$dist/oci.tar' --registry '$dst/imported' --format json -q >'$work/archives.json'"
# skopeo's docker-archive keeps no manifest: ferry writes one over the
# config and layers as stored; the OCI archive's manifest goes as it is.
want=$("$ferry" list --format json "$dist/oci.tar" | jq -r '.images[0].digest')
check "oci archive: pushed digest is the archive's ($want)" test "$(raw_digest "$dst/imported/airgap/from-oci:v1")" = "$want"
check "docker archive: pushed config is the source's ($linux_config)" \
	test "$(config_of "$dst/imported/airgap/from-docker:v1")" = "$linux_config"
check "crane tarball and podman archives push" bash -c \
	"'$ferry' push '$dist/crane.tar' '$dist/podman.tar' --registry '$dst/crane' --format json -q >'$work/crane.json' && '$ferry' push '$dist/podman-oci.tar' --registry '$dst/podman-oci' --format json -q >'$work/podman-oci.json'"
want=$(cat "$work/crane.digest")
check "crane tarball: pushed digest is the one crane reads there ($want)" test "$(raw_digest "$dst/crane/airgap/from-crane:v1")" = "$want"
check "crane tarball: pushed config is the source's" test "$(config_of "$dst/crane/airgap/from-crane:v1")" = "$linux_config"
check "podman docker-archive: pushed config is the source's" test "$(config_of "$dst/crane/$runtime")" = "$linux_config"
# podman's OCI save converts the image (config included) to OCI types, so
# the archive's own digest is what must arrive.
podman_ref=$(jq -r '.images[0].reference' "$work/podman-oci.json")
want=$("$ferry" list --format json "$dist/podman-oci.tar" | jq -r '.images[0].digest')
check "podman oci-archive: $podman_ref is the archive's digest ($want)" test "$(raw_digest "$podman_ref")" = "$want"

check "oci layout directory named by tag only: warned, nothing pushed" bash -c \
	"'$ferry' push '$dist/ocidir' --registry '$dst/dir' --format json -q 2>'$work/dir.err' | jq -e '.images == [] or .images == null' && grep -F 'only by the tag \"v1\"' '$work/dir.err' | grep -q -- --repository"
check "oci layout directory with --repository" "$ferry" push "$dist/ocidir" --registry "$dst/dir" --repository airgap/from-dir -q
want=$("$ferry" list --format json "$dist/ocidir" | jq -r '.images[0].digest')
check "oci layout directory: pushed digest is the layout's ($want)" test "$(raw_digest "$dst/dir/airgap/from-dir:v1")" = "$want"
check "dry run pushes nothing" bash -c "'$ferry' push '$dist/docker.tar' --registry '$dst/dry' --dry-run --format json | jq -e '.dryRun and .blobsUploaded > 0'"
check "dry run left no tag" bash -c "! skopeo inspect --raw --cert-dir '$FERRY_REGISTRY_CERT_DIR' docker://$dst/dry/airgap/from-docker:v1"

# kill -9 while blobs upload, then rerun: a large image, two blobs at a
# time, killed once the registry has taken its first blob.
layers=12
check "large OCI layout ($layers x 24 MiB)" "$work/e2eimages" layout "$dist/big" docker.io/airgap/big:v1 "$layers" $((24 << 20))
before=$(wc -l <"$rlog")
"$ferry" push "$dist/big" --registry "$dst" --jobs 2 -q --format json >"$work/killed.json" 2>&1 &
pid=$!
for _ in $(seq 600); do
	tail -n +"$((before + 1))" "$rlog" | grep -qE 'http.request.method=PUT .*/blobs/uploads/.*http.response.status=201' && break
	sleep 0.02
done
status=0
{
	kill -9 "$pid" || true
	wait "$pid" || status=$?
} 2>/dev/null
first=$(tail -n +"$((before + 1))" "$rlog" | grep -cE 'http.request.method=PUT .*/blobs/uploads/.*http.response.status=201' || true)
check "push killed mid-way (exit $status, $first of $((layers + 1)) blobs in)" test "$status" = 137 -a "$first" -ge 1 -a "$first" -lt $((layers + 1))
check "killed push left no tag" bash -c "! skopeo inspect --raw --cert-dir '$FERRY_REGISTRY_CERT_DIR' docker://$dst/airgap/big:v1"
before=$(wc -l <"$rlog")
check "rerun after the kill completes" bash -c "'$ferry' push '$dist/big' --registry '$dst' --format json -q >'$work/resumed.json'"
sent=$(tail -n +"$((before + 1))" "$rlog" | grep -cE 'http.request.method=PUT .*/blobs/uploads/.*http.response.status=201' || true)
check "rerun skipped the $first blobs already in, sent the rest ($sent)" jq -e --argjson first "$first" --argjson sent "$sent" --argjson all $((layers + 1)) \
	'.blobsExisting >= $first and .blobsUploaded == $sent and .blobsUploaded + .blobsExisting == $all and .blobsUploaded < $all' "$work/resumed.json"
want=$("$ferry" list --format json "$dist/big" | jq -r '.images[0].digest')
check "tag after the rerun is the image ($want)" test "$(raw_digest "$dst/airgap/big:v1")" = "$want"

# The air gap: containerd resolves the original names through a mirror.
mkdir -p "$FERRY_CTR_HOSTS_DIR/$src"
cat >"$FERRY_CTR_HOSTS_DIR/$src/hosts.toml" <<EOF
server = "https://$src"

[host."https://$dst"]
  capabilities = ["pull", "resolve"]
  ca = "$FERRY_REGISTRY_CERT_DIR/ca.crt"
EOF
creds=$FERRY_REGISTRY_USER:$FERRY_REGISTRY_PASS
ctr_() { ctr --address "$FERRY_CTR_ADDRESS" "$@"; }
for ref in "$runtime" "$pause"; do
	check "ctr pull $src/$ref through the mirror" ctr_ images pull --snapshotter "$FERRY_CTR_SNAPSHOTTER" \
		--hosts-dir "$FERRY_CTR_HOSTS_DIR" --user "$creds" "$src/$ref"
	check "ctr images check: $ref complete" bash -c "ctr --address '$FERRY_CTR_ADDRESS' images check | grep -F '$src/$ref ' | grep -q complete"
done
check "containerd's pause is the upstream list" bash -c "ctr --address '$FERRY_CTR_ADDRESS' images ls | grep -F '$src/$pause ' | grep -qF '$pause_list'"

e2e_end
