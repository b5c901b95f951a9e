#!/usr/bin/env bash
# End to end: `ferry bundle` pulls the sample set from the real distribution
# registry (TLS + htpasswd, credentials from docker config.json, CA from
# SSL_CERT_FILE), then every loader ferry's users have must accept every
# bundle kind: k3s/rke2's ggcr tarball.Image with a capped zstd reader,
# containerd (`ctr images import` + check + mount), skopeo, podman and
# docker (a private dockerd). Reports are checked as JSON with jq.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=SCRIPTDIR/lib/e2e.sh
source scripts/lib/e2e.sh
e2e_begin e2e-bundle docker-registry containerd ctr skopeo podman dockerd docker zstd curl openssl perl go jq sha256sum
start_registry
start_containerd
start_dockerd
use_registry_auth
export SSL_CERT_FILE=$FERRY_REGISTRY_CA
reg=$FERRY_REGISTRY

"$ferry" sample push --registry "$reg" --size $((3 << 20)) >/dev/null
pause_list_digest=$(skopeo inspect --raw --cert-dir "$FERRY_REGISTRY_CERT_DIR" --authfile "$FERRY_REGISTRY_AUTHFILE" \
	"docker://$reg/rancher/mirrored-pause:3.6" | sha256sum | cut -d' ' -f1)
cat >"$work/windows-images.txt" <<LIST
# rke2 windows images (the pause image pinned by tag and digest)
$reg/rancher/rke2-runtime:v1.31.2-rke2r1
$reg/rancher/mirrored-pause:3.6@sha256:$pause_list_digest

$reg/rancher/rke2-windows-scratch:v1.31.2
LIST
out=$work/dist
mkdir -p "$out"

check "bundle windows 1809,ltsc2022,2025 (zstd) over TLS + htpasswd" \
	"$ferry" bundle -f "$work/windows-images.txt" --windows-version 1809,ltsc2022,2025 \
	-o "$out/rke2-windows-{version}-amd64-images.tar.zst" --cache "$work/cache" -q
check "bundle windows ltsc2022 (gzip, --skip-foreign-layers)" \
	"$ferry" bundle -f "$work/windows-images.txt" --windows-version ltsc2022 --skip-foreign-layers \
	-o "$out/rke2-windows-ltsc2022-noforeign.tar.gz" --cache "$work/cache" -q
check "bundle windows 1809 (plain tar)" \
	"$ferry" bundle -f "$work/windows-images.txt" --windows-version ltsc2019 -o "$out/rke2-windows-1809.tar" --cache "$work/cache" -q
check "bundle linux/amd64 (gzip)" \
	"$ferry" bundle "$reg/rancher/rke2-runtime:v1.31.2-rke2r1" "$reg/rancher/mirrored-pause:3.6" \
	--platform linux/amd64 -o "$out/rke2-images.linux-amd64.tar.gz" --cache "$work/cache" -q
# Linux plain and zstd too, each with sidecars, reported as JSON.
linux_refs=("$reg/rancher/rke2-runtime:v1.31.2-rke2r1" "$reg/rancher/mirrored-pause:3.6")
check "bundle linux/amd64 (plain tar and zstd) --sidecars --format json" \
	bash -c "'$ferry' bundle ${linux_refs[*]} --platform linux/amd64 -o '$out/rke2-images.linux-amd64.tar' --cache '$work/cache' -q --sidecars --format json >'$work/linux-tar.json' &&
	'$ferry' bundle ${linux_refs[*]} --platform linux/amd64 -o '$out/rke2-images.linux-amd64.tar.zst' --cache '$work/cache' -q --sidecars --format json >'$work/linux-zst.json'"
for j in linux-tar linux-zst; do
	check "bundle --format json ($j): path, size, sha256 and each image" jq -e --arg out "$out" \
		'.schemaVersion == 1 and (.bundles | length) == 1 and (.bundles[0] | (.path | startswith($out)) and .size > 0 and (.sha256 | length) == 64
		and (.images | length) == 2 and all(.images[]; .ref != "" and (.digest | startswith("sha256:")) and .platform == "linux/amd64" and (.layers | length) > 0))' \
		"$work/$j.json"
done
check "sidecars: sha256sum -c sha256sum-amd64.txt" bash -c "cd '$out' && sha256sum -c --strict sha256sum-amd64.txt"
check "sidecars: four lines (two bundles, two image lists)" test "$(wc -l <"$out/sha256sum-amd64.txt")" = 4
check "sidecars: the image list names both images" bash -c "diff <(sort '$out/rke2-images.linux-amd64.tar.zst.txt') <(printf '%s\n' ${linux_refs[*]} | sort)"
check "bundle json sha256 = sha256sum" bash -c "[ \"\$(jq -r '.bundles[0].sha256' '$work/linux-zst.json')\" = \"\$(sha256sum '$out/rke2-images.linux-amd64.tar.zst' | cut -d' ' -f1)\" ]"
check "bundle -o - | list - (stdout to stdin)" bash -c "'$ferry' bundle '$reg/rancher/mirrored-pause:3.6' -o - --cache '$work/cache' -q | '$ferry' list - --format json | jq -e '.images | length == 1' >/dev/null"
rm -f "$out"/*.txt
check "bundle with no credentials is refused" \
	bash -c "! DOCKER_CONFIG=$work/none '$ferry' bundle '$reg/rancher/mirrored-pause:3.6' -o '$out/denied.tar' --cache '$work/cache2' -q"
check "no credentials: no output file" test ! -e "$out/denied.tar"
check "error output never shows the password" bash -c "! DOCKER_CONFIG=$work/none '$ferry' bundle '$reg/rancher/mirrored-pause:3.6' -o '$out/denied.tar' -q 2>&1 | grep -F '$FERRY_REGISTRY_PASS'"

mapfile -t bundles < <(ls "$out"/*.tar*)
# The 1809 list entry is the highest revision, not the older one also listed.
check "1809 bundle holds 10.0.17763.5458" bash -c "'$ferry' list '$out/rke2-windows-1809-amd64-images.tar.zst' | grep -q 'windows/amd64:10.0.17763.5458'"
check "digest-pinned pause keeps its tag" bash -c "'$ferry' list '$out/rke2-windows-2025-amd64-images.tar.zst' | grep -q '$reg/rancher/mirrored-pause:3.6 '"
check "no image named i-was-a-digest" bash -c "'$ferry' list --format json '$out/rke2-windows-2025-amd64-images.tar.zst' | jq -e '[.images[].names[] | select(contains(\"i-was-a-digest\"))] == []' >/dev/null"
check "pause list digest pin verifies offline" "$ferry" verify "$out/rke2-windows-2025-amd64-images.tar.zst" \
	-f "$work/windows-images.txt" --exact --windows-version 2025
check "verify --format json: the shared check shape" bash -c "'$ferry' verify '$out/rke2-windows-2025-amd64-images.tar.zst' --format json |
	jq -e '.schemaVersion == 1 and .ok and .errors == 0 and (.checks | length) > 10 and all(.checks[]; has(\"check\") and has(\"ok\"))' >/dev/null"
check "verify - reads stdin" bash -c "'$ferry' verify - <'$out/rke2-windows-2025-amd64-images.tar.zst' --format json | jq -e .ok >/dev/null"
read_bytes=$("$ferry" list --format json "$out/rke2-windows-1809-amd64-images.tar.zst" | jq -r .decompressedBytesRead)
check "zstd metadata frame: list decompressed ${read_bytes:-?} bytes (< 64 KiB)" test "${read_bytes:-999999}" -lt 65536

# k3s / rke2: ggcr tarball.Image over a zstd reader capped at 32 MiB. It
# opens every layer file, so bundles made with --skip-foreign-layers are
# for containerd only (which records the missing layers by URL).
complete_bundles=()
for b in "${bundles[@]}"; do [[ $b == *noforeign* ]] || complete_bundles+=("$b"); done
check "k3s loader path (ggcr tarball.Image, 32 MiB zstd window)" \
	env FERRY_E2E_BUNDLES="${complete_bundles[*]}" go test -count=1 -run TestK3sLoaderOnBundles -v ./bundle/

# containerd: import a decompressed stream, then check and mount every image.
ctr_() { ctr --address "$FERRY_CTR_ADDRESS" "$@"; }
for b in "${bundles[@]}"; do
	ns=ferry$RANDOM
	base=$(basename "$b")
	plat=windows/amd64
	case $base in *linux*) plat=linux/amd64 ;; esac
	if ! { case $b in *.zst) zstd -dc "$b" ;; *.gz) gzip -dc "$b" ;; *) cat "$b" ;; esac } |
		ctr_ -n "$ns" images import --all-platforms --snapshotter native --no-unpack - >"$work/last.log" 2>&1; then
		bad "containerd import $base"; sed 's/^/     /' "$work/last.log" | tail; continue
	fi
	mapfile -t names < <(ctr_ -n "$ns" images ls -q)
	want=$("$ferry" list --format json "$b" | jq '.images | length')
	if [ "${#names[@]}" -ne "$want" ]; then bad "containerd import $base: ${#names[@]} images, want $want"; continue; fi
	ok "containerd import $base (${#names[@]} images)"
	for n in "${names[@]}"; do
		if [[ $base == *noforeign* && $n != *scratch* ]]; then
			# Foreign layers were left out on purpose: containerd must report them missing, not corrupt.
			check "containerd check $base $n reports the left-out foreign layer" bash -c "ctr --address '$FERRY_CTR_ADDRESS' -n '$ns' images check | grep -F '$n' | grep -q incomplete"
			continue
		fi
		check "containerd check $base $n complete" bash -c "ctr --address '$FERRY_CTR_ADDRESS' -n '$ns' images check | grep -F '$n' | grep -q complete"
		mnt=$work/mnt-$RANDOM
		mkdir -p "$mnt"
		# Unpacking recomputes every layer's diff_id against the config.
		if ctr_ -n "$ns" images mount --snapshotter native --platform "$plat" "$n" "$mnt" >"$work/last.log" 2>&1; then
			ok "containerd mount $base $n"
			ctr_ -n "$ns" images unmount --rm "$mnt" >/dev/null 2>&1 || umount "$mnt" || true
		else
			bad "containerd mount $base $n"; sed 's/^/     /' "$work/last.log" | tail
		fi
	done
done

# skopeo: docker-archive (every image by index) and oci-archive. skopeo
# 1.9.3 reads zstd archives but not gzip ones (not even a plain `gzip`
# file), so gzip bundles are handed to it decompressed.
for b in "${bundles[@]}"; do
	base=$(basename "$b")
	[[ $base == *noforeign* ]] && continue
	src=$b
	if [[ $b == *.gz ]]; then src=$work/$base.tar; gzip -dc "$b" >"$src"; fi
	n=$("$ferry" list --format json "$b" | jq '.images | length')
	for ((i = 0; i < n; i++)); do
		check "skopeo inspect docker-archive:$base:@$i" skopeo inspect "docker-archive:$src:@$i"
		check "skopeo copy docker-archive:$base:@$i oci:" skopeo copy -q "docker-archive:$src:@$i" "oci:$work/oci-$RANDOM:x"
	done
done
# skopeo 1.9.3's OCI layout reader only sees OCI-typed manifests in
# index.json; the FROM-scratch image is OCI-typed, the others are Docker.
check "skopeo copy oci-archive:rke2-windows-1809.tar:v1.31.2" \
	skopeo copy -q "oci-archive:$out/rke2-windows-1809.tar:v1.31.2" "oci:$work/oci-archive:x"

# zstd streams end with a seek table in a skippable frame: the reference
# decoder must pass over it and find every frame's checksum good.
for b in "${bundles[@]}"; do
	[[ $b == *.zst ]] && check "zstd -t $(basename "$b") (seek table skipped)" zstd -q -t "$b"
done

# podman load (vfs storage in the work dir): every image, under its names.
# podman 4.3 shares skopeo 1.9's docker-archive reader, which fails on any
# gzip file, so gzip bundles are handed to it decompressed.
podman_() { podman --root "$work/podman/root" --runroot "$work/podman/run" --storage-driver vfs --events-backend file "$@"; }
for b in "${complete_bundles[@]}"; do
	base=$(basename "$b")
	src=$b
	if [[ $b == *.gz ]]; then src=$work/$base.tar; gzip -dc "$b" >"$src"; fi
	if ! podman_ load -q -i "$src" >"$work/last.log" 2>&1; then
		bad "podman load $base"; sed 's/^/     /' "$work/last.log" | tail; continue
	fi
	"$ferry" list --format json "$b" | jq -r '.images[].names[]' | sort -u >"$work/want-names"
	missing=$(podman_ images --format '{{.Repository}}:{{.Tag}}' | sort -u | comm -13 - "$work/want-names")
	if [ -n "$missing" ]; then bad "podman load $base: not loaded: $missing"; else ok "podman load $base ($(wc -l <"$work/want-names") names)"; fi
	podman_ rmi -a -f >/dev/null 2>&1 || true
done

# docker load (the private dockerd of start_dockerd, vfs storage). What
# Docker 20.10 reads: plain and gzip archives of Linux images. It refuses
# zstd archives (it does not detect zstd) and Windows images on Linux; the
# refusals are checked to be exactly those, so a new one shows up.
docker_version=$(docker version --format '{{.Server.Version}}')
echo "docker load against dockerd $docker_version (client $(docker version --format '{{.Client.Version}}'))"
for b in "${complete_bundles[@]}"; do
	base=$(basename "$b")
	case $base in
	*linux*.tar | *linux*.tar.gz) want=load ;;
	*.zst) want=no-zstd ;;
	*windows*) want=no-windows ;;
	esac
	if docker load -q -i "$b" >"$work/last.log" 2>&1; then
		if [ "$want" != load ]; then bad "docker load $base: loaded, expected refusal ($want)"; continue; fi
		"$ferry" list --format json "$b" | jq -r '.images[].names[]' | sort -u >"$work/want-names"
		missing=$(docker images --format '{{.Repository}}:{{.Tag}}' | sort -u | comm -13 - "$work/want-names")
		if [ -n "$missing" ]; then bad "docker load $base: not loaded: $missing"; else ok "docker $docker_version load $base ($(wc -l <"$work/want-names") names)"; fi
		docker rmi -f $(docker images -q) >/dev/null 2>&1 || true
		continue
	fi
	case $want in
	load) bad "docker load $base"; sed 's/^/     /' "$work/last.log" | tail ;;
	no-zstd) grep -q 'archive/tar: invalid tar header' "$work/last.log" &&
		ok "docker $docker_version refuses zstd $base: $(tail -1 "$work/last.log")" ||
		{ bad "docker load $base: not the known zstd refusal"; sed 's/^/     /' "$work/last.log" | tail; } ;;
	no-windows) grep -q 'cannot load windows image on linux' "$work/last.log" &&
		ok "docker $docker_version refuses Windows $base: $(tail -1 "$work/last.log")" ||
		{ bad "docker load $base: not the known Windows refusal"; sed 's/^/     /' "$work/last.log" | tail; } ;;
	esac
done

e2e_end
