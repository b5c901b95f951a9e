#!/usr/bin/env bash
# End to end: archives made by real tools (crane pull, skopeo docker-archive
# and oci-archive), all manifest-last, go through `ferry reorder`; then
# `ferry list` reads only their head, `ferry verify` passes, and the loaders
# (k3s's ggcr tarball.Image path, containerd, skopeo) still accept them.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=SCRIPTDIR/lib/e2e.sh
source scripts/lib/e2e.sh
e2e_begin e2e-reorder docker-registry containerd ctr skopeo zstd curl openssl perl go jq
# crane comes from the Go module proxy into a temp dir, never the repo.
GOBIN=$work/bin go install github.com/google/go-containerregistry/cmd/crane@v0.22.1
crane=$work/bin/crane
start_registry
start_containerd
use_registry_auth
export SSL_CERT_FILE=$FERRY_REGISTRY_CA
reg=$FERRY_REGISTRY
"$ferry" sample push --registry "$reg" --size $((2 << 20)) >/dev/null

in=$work/in
mkdir -p "$in"
runtime=$reg/rancher/rke2-runtime:v1.31.2-rke2r1
pause=$reg/rancher/mirrored-pause:3.6
skopeo_src=(--src-cert-dir "$FERRY_REGISTRY_CERT_DIR" --src-authfile "$FERRY_REGISTRY_AUTHFILE")
check "crane pull (2 images, linux/amd64)" "$crane" pull --platform linux/amd64 "$runtime" "$pause" "$in/crane.tar"
check "crane pull windows 1809 (exact os.version)" "$crane" pull --platform windows/amd64:10.0.17763.5458 "$pause" "$in/crane-windows.tar"
check "skopeo copy docker-archive" skopeo copy -q "${skopeo_src[@]}" --override-os linux --override-arch amd64 \
	"docker://$runtime" "docker-archive:$in/skopeo-docker.tar:$runtime"
check "skopeo copy oci-archive" skopeo copy -q "${skopeo_src[@]}" --override-os linux --override-arch amd64 \
	"docker://$pause" "oci-archive:$in/skopeo-oci.tar:3.6"
gzip -k "$in/crane.tar"

for src in "$in"/*; do
	base=$(basename "$src")
	check "$base is not metadata-first before reorder" bash -c "'$ferry' list --format json '$src' | jq -e '.metadataFirst == false' >/dev/null"
	out=$work/out-${base%%.*}.tar.zst
	check "reorder $base -> zstd" "$ferry" reorder "$src" -o "$out"
	check "reordered $base is metadata-first" bash -c "'$ferry' list --format json '$out' | jq -e '.metadataFirst == true' >/dev/null"
	check "verify reordered $base" "$ferry" verify "$out"
	check "reorder of reordered $base is byte-identical" bash -c "'$ferry' reorder '$out' -o '$work/again.tar.zst' && cmp '$out' '$work/again.tar.zst'"
	cp "$src" "$work/inplace"
	check "reorder $base in place keeps its compression" bash -c "'$ferry' reorder '$work/inplace' && '$ferry' list --format json '$work/inplace' | jq -e '.metadataFirst == true' >/dev/null"
done

docker_archives=("$work/out-crane.tar.zst" "$work/out-crane-windows.tar.zst" "$work/out-skopeo-docker.tar.zst")
check "k3s loader path on reordered archives" \
	env FERRY_E2E_BUNDLES="${docker_archives[*]}" go test -count=1 -run TestK3sLoaderOnBundles -v ./bundle/
for out in "${docker_archives[@]}" "$work/out-skopeo-oci.tar.zst"; do
	base=$(basename "$out")
	ns=reorder$RANDOM
	if zstd -dc "$out" | ctr --address "$FERRY_CTR_ADDRESS" -n "$ns" images import --all-platforms --no-unpack - >"$work/last.log" 2>&1; then
		ok "containerd import $base"
		check "containerd check $base" bash -c "ctr --address '$FERRY_CTR_ADDRESS' -n '$ns' images check | grep -q complete"
	else
		bad "containerd import $base"; sed 's/^/     /' "$work/last.log" | tail
	fi
done
for out in "${docker_archives[@]}"; do
	check "skopeo inspect docker-archive:$(basename "$out")" skopeo inspect "docker-archive:$out:@0"
done

e2e_end
