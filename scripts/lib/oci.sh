# shellcheck shell=bash
# oci.sh - build tiny OCI image layouts by hand (no network, no docker).
#
#   make_oci_image LAYOUT TAG [CONTENT] [ARCH]
#
# Writes a one-layer image into the OCI layout dir LAYOUT (created; its
# index.json is replaced, so one image per layout) with ref name TAG. The
# layer holds /hello.txt containing CONTENT. ARCH defaults to the host's
# GOARCH name so `ctr images pull` (host platform by default) selects it.
# Output is deterministic: same CONTENT/ARCH => same digests.
# Prints the manifest digest (sha256:...).
# Use with skopeo as  oci:LAYOUT:TAG

oci_host_arch() {
  case $(uname -m) in
    x86_64) echo amd64 ;;
    aarch64 | arm64) echo arm64 ;;
    armv7l) echo arm ;;
    s390x) echo s390x ;;
    ppc64le) echo ppc64le ;;
    riscv64) echo riscv64 ;;
    *) uname -m ;;
  esac
}

# _oci_put LAYOUT FILE : move FILE into the blob store; prints "HEX SIZE".
_oci_put() {
  local hex size
  hex=$(sha256sum "$2" | cut -d' ' -f1)
  size=$(stat -c %s "$2")
  mv "$2" "$1/blobs/sha256/$hex"
  echo "$hex $size"
}

make_oci_image() {
  local layout=$1 tag=$2 content=${3:-hello from ferry} arch=${4:-}
  [ -n "$arch" ] || arch=$(oci_host_arch)
  local tmp diffid lhex lsize chex csize mhex msize
  tmp=$(mktemp -d)
  mkdir -p "$layout/blobs/sha256" "$tmp/rootfs"

  printf '%s\n' "$content" >"$tmp/rootfs/hello.txt"
  # Fixed mtime/owner and gzip -n keep digests reproducible.
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    -C "$tmp/rootfs" -cf "$tmp/layer.tar" hello.txt
  diffid=$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
  gzip -n -9 "$tmp/layer.tar"
  read -r lhex lsize < <(_oci_put "$layout" "$tmp/layer.tar.gz")

  printf '{"architecture":"%s","os":"linux","config":{"Cmd":["/hello"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$arch" "$diffid" >"$tmp/config.json"
  read -r chex csize < <(_oci_put "$layout" "$tmp/config.json")

  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$chex" "$csize" "$lhex" "$lsize" >"$tmp/manifest.json"
  read -r mhex msize < <(_oci_put "$layout" "$tmp/manifest.json")

  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}\n' \
    "$mhex" "$msize" "$arch" "$tag" >"$layout/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}\n' >"$layout/oci-layout"
  rm -rf "$tmp"
  echo "sha256:$mhex"
}
