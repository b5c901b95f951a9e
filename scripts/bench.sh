#!/usr/bin/env bash
# bench.sh - ferry against the release pipeline it replaces, on a real
# distribution registry (TLS + htpasswd) on 127.0.0.1 holding ferry's
# deterministic sample set (rke2-runtime and mirrored-pause manifest lists
# for linux/amd64 and Windows 1809, ltsc2022 and 2025, plus a FROM-scratch
# Windows image):
#
#   1. bundle one Windows version: `ferry bundle` against crane pull, rke2's
#      two-pass bsdtar reorder and zstd -T0 -3
#   2. bundle three versions: one ferry run against one pipeline per version
#   3. reorder a manifest-last tarball (two sizes): `ferry reorder` against
#      the two bsdtar passes and zstd -T0 -3, and against a durable copy of
#      the input (dd conv=fdatasync), since ferry's output is on disk at exit
#   4. list a bundle: `ferry list` against pulling manifest.json out of a
#      manifest-last .tar.zst: bsdtar -xqOf on the file (the fastest way,
#      stopping at the match), and zstd -dc | bsdtar -xOf -
#   5. verify a bundle: `ferry verify` (full, and --digests-only) against
#      zstd -dc | sha256sum (scripts/lib/bench-verify.sh)
#   6. push a multi-image bundle into a fresh registry: `ferry push` against
#      skopeo copy docker-archive:…:@N and crane push per image
#   7. serve a bundle's blobs: `ferry serve` on the .tar.zst against
#      distribution (plain HTTP, no auth), 1 and 8 concurrent crane pulls
#   8. sizes: `ferry reorder` against the bsdtar passes and zstd -T0 -3 on
#      manifest-last tarballs of 0.5, 1, 2 and 4 GiB built locally, 5
#      alternating pairs each, with each side's spread
#   9. scale: 1,000 and 5,000 small images, `ferry bundle` against crane
#      pull of all of them + bsdtar x2 + zstd -T0 -3 (wall, RSS, registry
#      requests), and `ferry list` of the largest against bsdtar -xqOf
#  10. compress: a docker-save-style tarball of real files (uncompressed
#      layers), `ferry reorder` against rke2's two bsdtar passes and its
#      release compression, zstd -T0 -16 --long=25; `ferry verify` (full,
#      --digests-only) of ferry's output against zstd -dc | sha256sum
#   (scripts/lib/bench-push-serve.sh has 6 and 7, bench-sizes.sh 8,
#   bench-scale.sh 9, bench-compress.sh 10)
#
# Every measurement runs BENCH_RUNS times, ferry and its counterpart taking
# turns so that load from other processes falls on both, each run with a
# fresh ferry cache and fresh outputs; the table shows medians. Registry
# traffic is read from the registry's own log, the same ruler for both.
#
# Environment (sizes in bytes):
#   BENCH_SIZE          sample image data per Windows version (300 MiB)
#   BENCH_REORDER_SIZE  sample size for the large reorder input (680 MiB,
#                       which makes a manifest-last tarball of about 1.1 GiB;
#                       the small input is the same tarball at BENCH_SIZE,
#                       about 0.5 GiB by default)
#   BENCH_PUSH_SIZE     sample size for the push and serve bundle (2 GiB,
#                       which makes a Windows 1809 bundle of about 1 GiB;
#                       the sample's layers are gzip'd at about 2:1)
#   BENCH_SERVE_PULLS   concurrent pulls to measure serve with ("1 8")
#   BENCH_SIZES         input sizes for sizes, in GiB or bytes ("0.5 1 2 4")
#   BENCH_SIZES_RUNS    pairs per size for sizes (5)
#   BENCH_COMPRESS_SIZE bytes of files in the compress scenario's tarball
#                       (200 MiB; quick: 8 MiB)
#   BENCH_SCENARIOS     which to run, of core (1-5), push, serve, sizes,
#                       scale, compress ("core push serve scale compress")
#   BENCH_SCALE_COUNTS  image counts for scale ("1000 5000"; quick: "20 50")
#   BENCH_RUNS          runs per measurement (3)
#   BENCH_ZSTD16        time rke2's release compression, zstd -T0 -16
#                       --long=25, once: 1, 0 or auto (only if BENCH_SIZE
#                       is at most 320 MiB, because it is slow)
#   BENCH_OUT           results file (bench-results.txt in a new temp dir,
#                       which is kept; the path is printed)
#   BENCH_QUICK=1       tiny smoke run (4 MiB, one run) to check the script
#   BENCH_KEEP=1        keep the work dir (archives, registry data, logs)
#   BENCH_CRANE         a crane binary to use instead of installing v0.22.1
#   BENCH_FERRY         a ferry binary to use instead of building ./cmd/ferry
#
# Needs go, docker-registry, openssl, curl, perl, zstd, bsdtar
# (libarchive-tools), GNU tar and GNU time (/usr/bin/time, Debian package
# "time"), and skopeo for push. Uses about 8 GiB of disk under /tmp at the
# default sizes. Not run by scripts/test.sh or CI: it takes half an hour.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# BENCH_OUT is relative to where we were started, not to the repository.
case ${BENCH_OUT:-} in "" | /*) ;; *) BENCH_OUT=$PWD/$BENCH_OUT ;; esac
cd "$(dirname "$0")/.."
# shellcheck source=lib/services.sh
source scripts/lib/services.sh
# shellcheck source=lib/bench.sh
source scripts/lib/bench.sh
# shellcheck source=lib/bench-push-serve.sh
source scripts/lib/bench-push-serve.sh
# shellcheck source=lib/bench-compress.sh
source scripts/lib/bench-compress.sh
# shellcheck source=lib/bench-verify.sh
source scripts/lib/bench-verify.sh
# shellcheck source=lib/bench-sizes.sh
source scripts/lib/bench-sizes.sh
# shellcheck source=lib/bench-scale.sh
source scripts/lib/bench-scale.sh

MIB=$((1 << 20))
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	: "${BENCH_SIZE:=$((4 * MIB))}" "${BENCH_REORDER_SIZE:=$((8 * MIB))}" "${BENCH_RUNS:=1}" "${BENCH_ZSTD16:=1}"
	: "${BENCH_PUSH_SIZE:=$((8 * MIB))}" "${BENCH_SERVE_PULLS:=1 2}" "${BENCH_COMPRESS_SIZE:=$((8 * MIB))}"
fi
BENCH_SIZE=${BENCH_SIZE:-$((300 * MIB))}
BENCH_REORDER_SIZE=${BENCH_REORDER_SIZE:-$((680 * MIB))}
BENCH_PUSH_SIZE=${BENCH_PUSH_SIZE:-$((2048 * MIB))}
read -r -a SERVE_PULLS <<<"${BENCH_SERVE_PULLS:-1 8}"
BENCH_COMPRESS_SIZE=${BENCH_COMPRESS_SIZE:-$((200 * MIB))}
BENCH_SCENARIOS=${BENCH_SCENARIOS:-core push serve scale compress}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_ZSTD16=${BENCH_ZSTD16:-auto}
CRANE_VERSION=v0.22.1

# The sample's Windows releases, as ferry names them, and their builds.
VERSIONS=(1809 ltsc2022 2025)
declare -A BUILD=([1809]=17763 [ltsc2022]=20348 [2025]=26100)
# Exact os.version per release, read from the registry (see resolve_os_versions).
declare -A OSVER=()
# Free-form lines printed under the table.
NOTES=()
note() { NOTES+=("$*"); bench_say "$*"; }

# ------------------------------------------------------------------ setup

check_tools() {
	require_tools go docker-registry openssl curl perl zstd bsdtar tar awk ||
		bench_die "missing tools (Debian: apt-get install docker-registry zstd libarchive-tools)"
	if want push; then require_tools skopeo || bench_die "push needs skopeo (Debian: apt-get install skopeo)"; fi
	if ! /usr/bin/time -f '%M' true >/dev/null 2>&1; then
		bench_die "GNU time not found at /usr/bin/time (Debian: apt-get install time)"
	fi
	[ "${BASH_VERSINFO[0]}" -ge 5 ] || bench_die "needs bash >= 5 (EPOCHREALTIME)"
}

build_tools() {
	if [ -n "${BENCH_FERRY:-}" ]; then
		ferry=$(realpath "$BENCH_FERRY")
	else
		bench_say "building ferry"
		go build -o "$work/ferry" ./cmd/ferry
		ferry=$work/ferry
	fi
	if [ -n "${BENCH_CRANE:-}" ]; then
		crane=$BENCH_CRANE
	else
		bench_say "installing crane $CRANE_VERSION into $work/bin"
		# go install pkg@version ignores the current module: go.mod is untouched.
		GOBIN=$work/bin go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
		crane=$work/bin/crane
	fi
	have_reorder=0 have_verify=0
	"$ferry" reorder --help >/dev/null 2>&1 && have_reorder=1
	"$ferry" verify --help >/dev/null 2>&1 && have_verify=1
	return 0
}

start_services() {
	ferry_svc_init "$work/svc"
	start_registry
	# crane (go-containerregistry) and ferry both read DOCKER_CONFIG and
	# SSL_CERT_FILE, so both pay the same TLS and htpasswd costs.
	use_registry_auth
	export SSL_CERT_FILE=$FERRY_REGISTRY_CA
	reg=$FERRY_REGISTRY
	reglog=$FERRY_SVC_DIR/logs/registry.log
	refs=("$reg/rancher/rke2-runtime:v1.31.2-rke2r1" "$reg/rancher/mirrored-pause:3.6" "$reg/rancher/rke2-windows-scratch:v1.31.2")
	printf '%s\n' "${refs[@]}" >"$work/windows-images.txt"
}

# want SCENARIO : whether BENCH_SCENARIOS names it.
want() { [[ " $BENCH_SCENARIOS " == *" $1 "* ]]; }

# push_sample SIZE [FLAG...] : (re)push the sample set. Tags move to the new images;
# the registry keeps the old blobs, which nothing references any more.
push_sample() {
	local t0=$EPOCHREALTIME
	bench_say "pushing the sample set at $(bench_fmt_bytes "$1") per Windows version"
	"$ferry" sample push --registry "$reg" --size "$1" "${@:2}" >"$work/push.log" 2>&1 ||
		{ cat "$work/push.log" >&2; bench_die "sample push failed"; }
	bench_say "pushed in $(bench_fmt_secs "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')") s"
}

# resolve_os_versions : the exact os.version of each release in the runtime
# list (its highest revision). crane's --platform matches os.version
# exactly, so the pipeline needs these; rke2 finds them the same way (jq
# over the list, selecting on the build number). Not timed.
resolve_os_versions() {
	local name build ver
	while read -r build ver; do
		for name in "${VERSIONS[@]}"; do
			if [ "${BUILD[$name]}" = "$build" ]; then OSVER[$name]=$ver; fi
		done
	done < <("$crane" manifest "${refs[0]}" | perl -MJSON::PP -0777 -ne '
		for my $m (@{decode_json($_)->{manifests}}) {
			my $v = $m->{platform}{"os.version"} // next;
			my ($b, $r) = $v =~ /^10\.0\.(\d+)\.(\d+)$/ or next;
			($best{$b} && $best{$b}[0] >= $r) or $best{$b} = [$r, $v];
		}
		print "$_ $best{$_}[1]\n" for sort keys %best;')
	for name in "${VERSIONS[@]}"; do
		[ -n "${OSVER[$name]:-}" ] || bench_die "no os.version for $name (build ${BUILD[$name]}) in ${refs[0]}"
	done
}

# crane_platform_check : the bug ferry fixes. crane picks a Windows image
# only by the exact os.version string, so a list that moved to the next
# monthly revision breaks the pipeline; without os.version it silently takes
# the first windows entry, whatever its release.
crane_platform_check() {
	local short=windows/amd64:10.0.${BUILD[1809]} first
	if "$crane" manifest --platform "$short" "${refs[0]}" >/dev/null 2>"$work/crane-check.err"; then
		note "crane --platform $short: accepted (unexpected)"
	else
		note "crane --platform $short (build, no revision) fails: $(grep -o 'no child with platform [^ ]*' "$work/crane-check.err" || head -c 200 "$work/crane-check.err")"
	fi
	first=$("$crane" config --platform windows/amd64 "${refs[0]}" |
		perl -MJSON::PP -0777 -ne 'print decode_json($_)->{"os.version"} // "none"')
	note "crane --platform windows/amd64 (no os.version) silently takes os.version $first"
	# The scratch image is a single manifest without os.version: crane only
	# matches platforms inside lists, so the pinned platform does not reject it.
	if "$crane" manifest --platform "windows/amd64:${OSVER[1809]}" "${refs[2]}" >/dev/null 2>&1; then
		note "crane accepts the os.version-pinned platform for the scratch image (single manifest, not a list)"
	else
		bench_die "crane rejects the pinned platform for ${refs[2]}; the pipeline would need a separate pull"
	fi
}

# ------------------------------------------------------------- pipelines

# rke2's reorder of its `docker image save` tarballs (scripts/package-images,
# also copied as is into downstream airgap scripts):
#   bsdtar -c -f $DEST --include=manifest.json --include=repositories @$DEST.tmp
#   bsdtar -r -f $DEST --exclude=manifest.json --exclude=repositories @$DEST.tmp
# The first pass reads the whole input to find two small entries, the second
# reads it again and copies everything else. (rke2 never reordered its
# crane-made Windows tarballs; this is what doing so costs.)
bsdtar_reorder_steps() {
	local in=$1 out=$2
	bench_step bsdtar -c -f "$out" --include=manifest.json --include=repositories "@$in"
	bench_step bsdtar -r -f "$out" --exclude=manifest.json --exclude=repositories "@$in"
}

# pipeline_version VERSION DIR : crane pull of the image list for one
# release into a manifest-last tarball, rke2's reorder, zstd at ferry's
# default level. Leaves DIR/VERSION.tar.zst and DIR/VERSION.reordered.tar.
pipeline_version() {
	local v=$1 d=$2
	bench_step "$crane" pull --platform "windows/amd64:${OSVER[$v]}" "${refs[@]}" "$d/$v.tar"
	bsdtar_reorder_steps "$d/$v.tar" "$d/$v.reordered.tar"
	bench_step zstd -T0 -3 -q -f "$d/$v.reordered.tar" -o "$d/$v.tar.zst"
	rm -f "$d/$v.tar"
}

# image_count FILE : images ferry sees in FILE (any image tarball).
image_count() {
	"$ferry" list --format json "$1" | perl -MJSON::PP -0777 -ne 'print scalar(@{decode_json($_)->{images}}), "\n"'
}

fresh_dir() { rm -rf "$1" && mkdir -p "$1"; }

file_sizes() { stat -c %s "$@" | awk '{ s += $1 } END { print s }'; }

# fetch_notes WHAT DISTINCT BLOBS ALL : compare what a tool fetched with the
# distinct blobs of its output.
fetch_notes() {
	local eq=no
	[ "$3" = "$2" ] && eq=yes
	note "$1: blob bytes fetched == distinct blobs in the output: $eq ($3 vs $2 B; $4 B with manifests)"
}

# ---------------------------------------------------------------- bundle

# bench_bundle ID VERSION... : ferry bundle for VERSIONs in one run against
# one pipeline run per version, in turns.
bench_bundle() {
	local id=$1 run d mark blobs all outs distinct pdistinct v i
	local -a fv=()
	shift
	local versions=("$@") csv
	csv=$(
		IFS=,
		echo "${versions[*]}"
	)
	for ((run = 1; run <= BENCH_RUNS; run++)); do
		bench_say "$id: run $run/$BENCH_RUNS: ferry bundle --windows-version $csv"
		d=$work/run
		fresh_dir "$d"
		mark=$(bench_log_mark "$reglog")
		bench_reset
		if [ ${#versions[@]} -eq 1 ]; then
			bench_step "$ferry" bundle -f "$work/windows-images.txt" --windows-version "$csv" \
				-o "$d/ferry-$csv.tar.zst" --cache "$d/cache"
		else
			bench_step "$ferry" bundle -f "$work/windows-images.txt" --windows-version "$csv" \
				-o "$d/ferry-{version}.tar.zst" --cache "$d/cache"
		fi
		read -r blobs all < <(bench_log_bytes "$reglog" "$mark")
		outs=()
		for v in "${versions[@]}"; do outs+=("$d/ferry-$v.tar.zst"); done
		bench_record "$id.ferry" "$(file_sizes "${outs[@]}")" "$blobs"
		if [ "$run" = 1 ]; then
			note "$id: ferry says: $(grep -h '^fetched' "$BENCH_WORK/step.out" || echo '(no fetched line)')"
			distinct=$(bench_distinct_blobs "${outs[@]}")
			fetch_notes "$id ferry" "$distinct" "$blobs" "$all"
			for v in "${versions[@]}"; do fv+=("$(image_count "$d/ferry-$v.tar.zst")"); done
		fi

		bench_say "$id: run $run/$BENCH_RUNS: crane + bsdtar + zstd per version"
		fresh_dir "$d"
		mark=$(bench_log_mark "$reglog")
		bench_reset
		for v in "${versions[@]}"; do pipeline_version "$v" "$d"; done
		read -r blobs all < <(bench_log_bytes "$reglog" "$mark")
		outs=()
		for v in "${versions[@]}"; do outs+=("$d/$v.tar.zst"); done
		bench_record "$id.pipe" "$(file_sizes "${outs[@]}")" "$blobs"
		if [ "$run" = 1 ]; then
			pdistinct=$(bench_distinct_blobs "${outs[@]}")
			fetch_notes "$id pipeline" "$pdistinct" "$blobs" "$all"
			[ "$pdistinct" = "$distinct" ] ||
				note "$id: WARNING: ferry's and the pipeline's outputs hold different blobs"
			i=0
			for v in "${versions[@]}"; do
				[ "$(image_count "$d/$v.tar.zst")" = "${fv[$i]}" ] ||
					bench_die "$id $v: ferry bundled ${fv[$i]} images, the pipeline $(image_count "$d/$v.tar.zst")"
				i=$((i + 1))
			done
		fi
	done
	# rke2's release compression is measured on the last reordered tar.
	mv "$d/${versions[0]}.reordered.tar" "$work/reordered-${versions[0]}.tar"
	rm -rf "$d"
}

# bench_zstd16 : rke2 ships its image tarballs as zstd -T0 -16 --long=25.
bench_zstd16() {
	local in=$work/reordered-1809.tar
	case $BENCH_ZSTD16 in
		1) ;;
		auto) [ "$BENCH_SIZE" -le $((320 * MIB)) ] || { note "zstd -16 --long=25: skipped (BENCH_SIZE > 320 MiB; BENCH_ZSTD16=1 forces it)"; return 0; } ;;
		*) note "zstd -16 --long=25: skipped (BENCH_ZSTD16=$BENCH_ZSTD16)"; return 0 ;;
	esac
	bench_say "zstd -T0 -16 --long=25 on the 1809 tar ($(bench_fmt_bytes "$(stat -c %s "$in")"))"
	bench_reset
	bench_step zstd -T0 -16 --long=25 -q -f "$in" -o "$work/z16.tar.zst"
	bench_record z16 "$(stat -c %s "$work/z16.tar.zst")" -
	rm -f "$work/z16.tar.zst"
}

# --------------------------------------------------------------- reorder

# make_manifest_last OUT : one docker-archive tarball holding every image of
# the sample (linux/amd64 and the three Windows releases), laid out as crane
# and docker save write it: manifest.json last. crane cannot write it in one
# go (digest references collapse onto one "i-was-a-digest" tag), so one pull
# per platform is merged, tags suffixed with the platform as rke2 tags them.
make_manifest_last() {
	local out=$1 d=$work/mk v tars=() mjs=()
	fresh_dir "$d"
	"$crane" pull --platform linux/amd64 "${refs[0]}" "${refs[1]}" "$d/linux-amd64.tar"
	tars+=("$d/linux-amd64.tar")
	for v in "${VERSIONS[@]}"; do
		if [ "$v" = 1809 ]; then
			"$crane" pull --platform "windows/amd64:${OSVER[$v]}" "${refs[@]}" "$d/windows-$v.tar"
		else
			"$crane" pull --platform "windows/amd64:${OSVER[$v]}" "${refs[0]}" "${refs[1]}" "$d/windows-$v.tar"
		fi
		tars+=("$d/windows-$v.tar")
	done
	for v in "${tars[@]}"; do
		tar -xO -f "$v" manifest.json >"$v.json"
		mjs+=("$v.json")
	done
	perl -MJSON::PP -e '
		my @all;
		for my $f (@ARGV) {
			my ($plat) = $f =~ m{/([^/]+)\.tar\.json$};
			open my $fh, "<", $f or die "$f: $!";
			my $m = decode_json(do { local $/; <$fh> });
			for my $e (@$m) { $_ .= "-$plat" for @{$e->{RepoTags} // []}; push @all, $e }
		}
		print encode_json(\@all);' "${mjs[@]}" >"$d/manifest.json"
	bsdtar -c -f "$out" --exclude=manifest.json "${tars[@]/#/@}"
	bsdtar -r -f "$out" -C "$d" manifest.json
	rm -rf "$d"
}

# bench_reorder ID INPUT : ferry reorder against the bsdtar passes + zstd,
# and each run's durable copy of INPUT (bench_durable_copy, as ID.dcopy).
# Keeps the last outputs as $work/ID.ferry.tar.zst and $work/ID.pipe.tar.zst.
bench_reorder() {
	local id=$1 in=$2 run d=$work/run
	for ((run = 1; run <= BENCH_RUNS; run++)); do
		fresh_dir "$d"
		if [ "$have_reorder" = 1 ]; then
			bench_say "$id: run $run/$BENCH_RUNS: ferry reorder"
			bench_reset
			bench_step "$ferry" reorder "$in" -o "$d/ferry.tar.zst"
			bench_record "$id.ferry" "$(stat -c %s "$d/ferry.tar.zst")" -
		fi
		bench_say "$id: run $run/$BENCH_RUNS: bsdtar x2 + zstd -T0 -3"
		bench_reset
		bsdtar_reorder_steps "$in" "$d/reordered.tar"
		bench_step zstd -T0 -3 -q -f "$d/reordered.tar" -o "$d/pipe.tar.zst"
		bench_record "$id.pipe" "$(stat -c %s "$d/pipe.tar.zst")" -
		rm -f "$d/reordered.tar"
		bench_say "$id: run $run/$BENCH_RUNS: durable copy (dd conv=fdatasync)"
		bench_durable_copy "$id.dcopy" "$in" "$d/copy.tar"
	done
	if [ "$have_reorder" = 1 ]; then
		[ "$("$ferry" list --format json "$d/ferry.tar.zst" | bench_json_field metadataFirst)" = 1 ] ||
			bench_die "$id: ferry reorder output is not metadata-first"
		[ "$(image_count "$d/ferry.tar.zst")" = "$(image_count "$d/pipe.tar.zst")" ] ||
			bench_die "$id: ferry reorder and the pipeline disagree on the images"
		mv "$d/ferry.tar.zst" "$work/$id.ferry.tar.zst"
	fi
	mv "$d/pipe.tar.zst" "$work/$id.pipe.tar.zst"
	rm -rf "$d"
}

# ------------------------------------------------------------ list, verify

# bench_list BUNDLE MANIFEST_LAST : ferry list on a ferry bundle against
# getting manifest.json out of a manifest-last .tar.zst, which means
# decompressing all of it: bsdtar -xqOf on the file, the fastest way (it
# stops at the first match, here the last entry), and zstd -dc | bsdtar.
# `ferry --help` gives the floor: starting the binary, which is most of
# what ferry list costs.
bench_list() {
	local bundle=$1 mlast=$2 run read
	bench_warm "$bundle" "$mlast"
	for ((run = 1; run <= BENCH_RUNS; run++)); do
		bench_say "list: run $run/$BENCH_RUNS"
		bench_reset
		bench_step "$ferry" --help
		bench_record list.floor - -
		bench_reset
		bench_step "$ferry" list --format json "$bundle"
		bench_record list.ferry "$(stat -c %s "$bundle")" -
		read=$(bench_json_field decompressedBytesRead <"$BENCH_WORK/step.out")
		bench_reset
		# shellcheck disable=SC2016 # $1 is for the inner shell
		bench_step bash -c 'zstd -dcq "$1" | bsdtar -xOf - manifest.json' _ "$mlast"
		grep -q RepoTags "$BENCH_WORK/step.out" || bench_die "no manifest.json in $mlast"
		bench_record list.pipe "$(stat -c %s "$mlast")" -
		bench_reset
		bench_step bsdtar -xqOf "$mlast" manifest.json
		grep -q RepoTags "$BENCH_WORK/step.out" || bench_die "no manifest.json in $mlast"
		bench_record list.bsdtar "$(stat -c %s "$mlast")" -
	done
	note "list: ferry list read $read decompressed bytes of $(bench_fmt_bytes "$(stat -c %s "$bundle")") $(basename "$bundle")"
}

# bench_verify BUNDLE : both verify modes against zstd -dc | sha256sum.
bench_verify() { bench_verify_runs verify "$1"; }

# ----------------------------------------------------------------- report

# row LABEL ID : one line of medians; nothing if ID was never measured.
row() {
	bench_has "$2" || return 0
	printf '%-46s %9s %8s %10s %11s %11s\n' "$1" \
		"$(bench_fmt_secs "$(bench_median "$2" wall)")" "$(bench_fmt_secs "$(bench_median "$2" cpu)")" \
		"$(bench_fmt_bytes "$(awk -v k="$(bench_median "$2" rss)" 'BEGIN { print (k == "-" ? "-" : k * 1024) }')")" \
		"$(bench_fmt_bytes "$(bench_median "$2" size)")" "$(bench_fmt_bytes "$(bench_median "$2" fetched)")"
}

# ratio LABEL A B [COLUMN...] : A/B per column (default wall, cpu, rss,
# size), printed only when both were measured.
ratio() {
	bench_has "$2" && bench_has "$3" || return 0
	local label=$1 a=$2 b=$3 c out=""
	shift 3
	[ $# -gt 0 ] || set -- wall cpu rss size
	for c in "$@"; do
		# Compressed sizes differ by fractions of a percent: show three digits.
		out+=" $c $(bench_ratio "$(bench_median "$a" "$c")" "$(bench_median "$b" "$c")" "$([ "$c" = size ] && echo 3 || echo 2)")"
	done
	printf '  %-44s%s\n' "$label" "$out"
}

skipped() { printf '%-46s %s\n' "$1" "$2"; }

core_report() {
	printf '%-46s %9s %8s %10s %11s %11s\n' scenario wall cpu 'peak RSS' output fetched
	row "bundle 1809: ferry bundle" b1.ferry
	row "bundle 1809: crane + bsdtar x2 + zstd -3" b1.pipe
	ratio "ferry/pipeline:" b1.ferry b1.pipe
	bench_has b1.pipe && printf '  %-44s %s\n' "pipeline steps:" "$(bench_breakdown b1.pipe)"
	row "bundle 1809,ltsc2022,2025: ferry (one run)" b3.ferry
	row "bundle 1809,ltsc2022,2025: pipeline x3" b3.pipe
	ratio "ferry/pipeline:" b3.ferry b3.pipe
	bench_has b3.pipe && printf '  %-44s %s\n' "pipeline steps:" "$(bench_breakdown b3.pipe)"
	row "rke2 release: zstd -T0 -16 --long=25 (1809)" z16
	ratio "zstd -16 / zstd -3 output (1809):" z16 b1.pipe size
	if [ "$have_reorder" = 1 ]; then
		row "reorder $s_small: ferry reorder" r-small.ferry
	else
		skipped "reorder $s_small: ferry reorder" "skipped: ferry reorder not built"
	fi
	row "reorder $s_small: bsdtar x2 + zstd -3" r-small.pipe
	ratio "ferry/pipeline:" r-small.ferry r-small.pipe
	row "reorder $s_small: durable copy (dd conv=fdatasync)" r-small.dcopy
	ratio "ferry/durable copy:" r-small.ferry r-small.dcopy wall
	if [ "$have_reorder" = 1 ]; then
		row "reorder $s_large: ferry reorder" r-large.ferry
	else
		skipped "reorder $s_large: ferry reorder" "skipped: ferry reorder not built"
	fi
	row "reorder $s_large: bsdtar x2 + zstd -3" r-large.pipe
	ratio "ferry/pipeline:" r-large.ferry r-large.pipe
	row "reorder $s_large: durable copy (dd conv=fdatasync)" r-large.dcopy
	ratio "ferry/durable copy:" r-large.ferry r-large.dcopy wall
	ratio "ferry reorder, large/small input:" r-large.ferry r-small.ferry wall rss size
	ratio "bsdtar + zstd, large/small input:" r-large.pipe r-small.pipe wall rss size
	row "list: ferry list --format json" list.ferry
	row "list: ferry --help (process start-up only)" list.floor
	row "list: bsdtar -xqOf MANIFEST_LAST.tar.zst" list.bsdtar
	row "list: zstd -dc | bsdtar -xOf - manifest.json" list.pipe
	ratio "bsdtar -xqOf/ferry (speed-up):" list.bsdtar list.ferry wall
	bench_has list.bsdtar && printf '  %-44s %s\n' "bsdtar -xqOf/ferry run by run (min/med/max):" "$(bench_run_ratios list.bsdtar list.ferry wall)"
	ratio "zstd -dc | bsdtar/ferry (speed-up):" list.pipe list.ferry wall
	if [ "$have_verify" = 1 ]; then
		verify_rows verify verify
	else
		skipped "verify: ferry verify" "skipped: ferry verify not built"
	fi
}

report() {
	local s_one s_small=- s_large=-
	s_one=$(bench_fmt_bytes "$BENCH_SIZE")
	if want core; then
		s_small=$(bench_fmt_bytes "$(stat -c %s "$work/reorder-small.tar")")
		s_large=$(bench_fmt_bytes "$(stat -c %s "$work/reorder-large.tar")")
	fi
	echo "ferry bench, $(date -u +%Y-%m-%dT%H:%MZ), $(git describe --always --dirty 2>/dev/null || echo '?')"
	echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM; load average at start: $load_start, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
	if awk -v l="${load_start%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 4) }'; then
		echo "NOTE: other work was running when the bench started, so the figures are noisy. Busiest processes then:"
		printf '%s\n' "$busy_start"
	fi
	if want core; then
		echo "sample: $s_one of image data per Windows version; runs: $BENCH_RUNS (medians; wall and CPU in seconds, CPU = user+sys of all processes)"
	else
		echo "runs: $BENCH_RUNS (wall and CPU in seconds)"
	fi
	echo "registry: distribution $(docker-registry --version 2>/dev/null | awk '{ print $3 }') with TLS + htpasswd on 127.0.0.1; crane $CRANE_VERSION; $(zstd --version | grep -o 'v[0-9.]*' | head -1) zstd; $(bsdtar --version | cut -d' ' -f1-2)"
	echo
	if want core; then core_report; fi
	if want push || want serve; then push_serve_report; fi
	if want sizes; then sizes_report; verify_sizes_report; fi
	if want scale; then scale_report; fi
	if want compress; then compress_report; fi
	echo
	echo "output: compressed size written (bundle rows: all versions together; list and verify rows:"
	echo "the size of the file read); fetched: blob bytes"
	echo "the registry served (configs and layers, from its log; manifests excluded). One pipeline"
	echo "per version fetches what versions share (here the scratch image) once per version."
	echo "rke2 reorder: bsdtar -c -f OUT --include=manifest.json --include=repositories @IN;"
	echo "              bsdtar -r -f OUT --exclude=manifest.json --exclude=repositories @IN"
	printf '%s\n' "${NOTES[@]/#/- }"
}

# ------------------------------------------------------------------- main

# run_core : scenarios 1-5.
run_core() {
	push_sample "$BENCH_SIZE"
	resolve_os_versions
	crane_platform_check

	bench_bundle b1 1809
	bench_zstd16
	bench_bundle b3 "${VERSIONS[@]}"
	rm -f "$work/reordered-1809.tar"

	bench_say "building the small reorder input"
	make_manifest_last "$work/reorder-small.tar"
	push_sample "$BENCH_REORDER_SIZE"
	resolve_os_versions
	bench_say "building the large reorder input"
	make_manifest_last "$work/reorder-large.tar"
	bench_reorder r-small "$work/reorder-small.tar"
	rm -f "$work/r-small.ferry.tar.zst" "$work/r-small.pipe.tar.zst"
	bench_reorder r-large "$work/reorder-large.tar"

	# The manifest-last .tar.zst is what docker save or crane | zstd ships.
	local bundle mlast=$work/manifest-last.tar.zst
	zstd -T0 -3 -q -f "$work/reorder-large.tar" -o "$mlast"
	if [ "$have_reorder" = 1 ]; then
		bundle=$work/r-large.ferry.tar.zst
	else
		bundle=$work/large-1809.tar.zst
		"$ferry" bundle -q -f "$work/windows-images.txt" --windows-version 1809 -o "$bundle" --cache "$work/cache"
		rm -rf "$work/cache"
	fi
	bench_list "$bundle" "$mlast"
	if [ "$have_verify" = 1 ]; then bench_verify "$bundle"; fi
}

cleanup() {
	_svc_stop_pid serve
	_svc_stop_pid plainreg
	stop_services
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		bench_say "kept $work"
	else
		rm -rf "$work"
	fi
}

main() {
	check_tools
	work=$(mktemp -d /tmp/ferry-bench.XXXXXX)
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	if [ -z "${BENCH_OUT:-}" ]; then
		BENCH_OUT=$(mktemp -d /tmp/ferry-bench-results.XXXXXX)/bench-results.txt
	fi
	load_start=$(cut -d' ' -f1-3 /proc/loadavg)
	# top's first sample averages over each process's life; the second is current.
	busy_start=$(top -bn2 -d0.5 -w 200 -o %CPU 2>/dev/null | awk '/^top -/ { it++ }
		it == 2 && $1 ~ /^[0-9]+$/ && $9 + 0 >= 5 { printf "  %5s%% %s\n", $9, $12 }' | head -n 5)
	[ -n "$busy_start" ] || busy_start="  (none above 5% CPU at that moment)"
	bench_init "$work/bench"
	build_tools
	[ "$have_reorder" = 1 ] || note "ferry reorder not built: reorder rows skipped, list uses a ferry bundle"
	[ "$have_verify" = 1 ] || note "ferry verify not built: verify skipped"
	start_services
	if want core; then run_core; fi
	if want push || want serve; then
		push_serve_prepare
		if want push; then bench_push; fi
		if want serve; then bench_serve; fi
	fi
	if want sizes; then run_sizes; fi
	if want scale; then run_scale; fi
	if want compress; then run_compress; fi

	mkdir -p "$(dirname "$BENCH_OUT")"
	report | tee "$BENCH_OUT"
	echo "results: $BENCH_OUT"
}

main "$@"
