# shellcheck shell=bash
# bench-compress.sh - the compress scenario of scripts/bench.sh, which
# sources this after bench.sh and provides $work, $ferry, note, fresh_dir,
# bsdtar_reorder_steps, image_count and row/ratio.
#
#   compress_make_input OUT SIZE  a docker-save-style tarball of real files
#   run_compress                  ferry reorder of it against rke2's reorder
#                                 and release compression (zstd -T0 -16
#                                 --long=25); then ferry verify of ferry's
#                                 output, full and --digests-only, against
#                                 zstd -dc | sha256sum of it (bench-verify.sh)
#   compress_report               the scenario's rows and ratios
#
# rke2's Linux airgap bundle is `docker save` output, whose layers are
# uncompressed tars, compressed with zstd -T0 -16 --long=25: that is the
# size and time ferry's content-aware compression is measured against.
#
# Environment: BENCH_COMPRESS_SIZE, bytes of files in the tarball (200 MiB;
# 8 MiB with BENCH_QUICK=1).

# compress_make_input OUT SIZE : the old `docker save` layout (one
# directory per layer with VERSION, json and an uncompressed layer.tar, a
# <config digest>.json per image, manifest.json and repositories last) of
# two images over about SIZE bytes of files from the Go toolchain
# (binaries, then sources, in name order; none larger than a layer), split
# into four layers: image a
# has layers 1-2, image b layers 1, 3 and 4. Built with GNU tar, sorted and
# with fixed owners and times, so the same toolchain gives the same bytes.
compress_make_input() {
	local out=$1 size=$2 d=$work/cmk groot i diff id
	local -a ids=() diffs=()
	local tarflags=(--sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu)
	groot=$(go env GOROOT)
	[ -r "$groot/src" ] || bench_die "compress: cannot read $groot/src"
	fresh_dir "$d"
	# "size path" of regular files, binaries first; four lists of about
	# SIZE/4 bytes each.
	(cd "$groot" && find bin pkg src -type f -printf '%s %p\n' | LC_ALL=C sort -k2) |
		awk -v want="$size" -v d="$d" '
			$2 ~ /^bin\// { bin = bin $0 "\n"; next } { rest = rest $0 "\n" }
			END {
				n = split(bin rest, lines, "\n"); quarter = want / 4; layer = 1; got = 0
				for (i = 1; i <= n && got < want; i++) {
					if (lines[i] == "") continue
					s = lines[i] + 0; p = substr(lines[i], index(lines[i], " ") + 1)
					if (s > quarter) continue
					print p > (d "/files" layer)
					got += s
					while (got >= quarter * layer && layer < 4) layer++
				}
			}'
	for i in 1 2 3 4; do
		[ -s "$d/files$i" ] || bench_die "compress: not enough files in $groot for layer $i of $(bench_fmt_bytes "$size")"
		tar -C "$groot" "${tarflags[@]}" -cf "$d/layer$i.tar" -T "$d/files$i"
		diff=$(sha256sum "$d/layer$i.tar" | cut -d' ' -f1)
		id=$(printf 'layer %s %s' "$i" "$diff" | sha256sum | cut -d' ' -f1)
		mkdir -p "$d/img/$id"
		mv "$d/layer$i.tar" "$d/img/$id/layer.tar"
		printf '1.0' >"$d/img/$id/VERSION"
		printf '{"id":"%s","created":"1970-01-01T00:00:00Z","os":"linux"}' "$id" >"$d/img/$id/json"
		ids+=("$id") diffs+=("sha256:$diff")
	done
	local ca cb
	ca=$(compress_config "$d/img" "${diffs[0]}" "${diffs[1]}")
	cb=$(compress_config "$d/img" "${diffs[0]}" "${diffs[2]}" "${diffs[3]}")
	printf '[{"Config":"%s.json","RepoTags":["ferry.test/go:a"],"Layers":["%s/layer.tar","%s/layer.tar"]},{"Config":"%s.json","RepoTags":["ferry.test/go:b"],"Layers":["%s/layer.tar","%s/layer.tar","%s/layer.tar"]}]' \
		"$ca" "${ids[0]}" "${ids[1]}" "$cb" "${ids[0]}" "${ids[2]}" "${ids[3]}" >"$d/manifest.json"
	printf '{"ferry.test/go":{"a":"%s","b":"%s"}}' "${ids[1]}" "${ids[3]}" >"$d/repositories"
	(cd "$d/img" && tar "${tarflags[@]}" -cf "$out" -- *)
	tar -C "$d" "${tarflags[@]}" -rf "$out" manifest.json repositories
	rm -rf "$d"
}

# compress_config DIR DIFF_ID... : writes an image config with these
# diff_ids into DIR as <digest>.json and prints the digest's hex.
compress_config() {
	local dir=$1 hex
	shift
	local ids
	ids=$(printf '"%s",' "$@")
	printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' "${ids%,}" >"$dir/config.tmp"
	hex=$(sha256sum "$dir/config.tmp" | cut -d' ' -f1)
	mv "$dir/config.tmp" "$dir/$hex.json"
	printf '%s\n' "$hex"
}

# run_compress : builds the input (not timed), then BENCH_RUNS pairs of
# ferry reorder and rke2's pipeline (its two bsdtar passes, then its
# release compression), taking turns; checks that both outputs hold the
# same images and that ferry's verifies.
run_compress() {
	local in=$work/compress-in.tar d=$work/crun run
	bench_say "compress: building a docker-save-style tarball of $(bench_fmt_bytes "$BENCH_COMPRESS_SIZE") of Go toolchain files"
	compress_make_input "$in" "$BENCH_COMPRESS_SIZE"
	for ((run = 1; run <= BENCH_RUNS; run++)); do
		fresh_dir "$d"
		bench_say "compress: run $run/$BENCH_RUNS: ferry reorder"
		bench_reset
		bench_step "$ferry" reorder "$in" -o "$d/ferry.tar.zst"
		bench_record c.ferry "$(stat -c %s "$d/ferry.tar.zst")" -
		bench_say "compress: run $run/$BENCH_RUNS: bsdtar x2 + zstd -T0 -16 --long=25"
		bench_reset
		bsdtar_reorder_steps "$in" "$d/reordered.tar"
		local w=$_bench_wall c=$_bench_cpu r=$_bench_rss
		# The zstd step is also recorded on its own.
		bench_reset
		bench_step zstd -T0 -16 --long=25 -q -f "$d/reordered.tar" -o "$d/rke2.tar.zst"
		bench_record c.zstd "$(stat -c %s "$d/rke2.tar.zst")" -
		read -r _bench_wall _bench_cpu _bench_rss < <(awk -v w="$w" -v c="$c" -v r="$r" \
			-v w2="$_bench_wall" -v c2="$_bench_cpu" -v r2="$_bench_rss" \
			'BEGIN { printf "%.6f %.2f %d\n", w + w2, c + c2, (r > r2 ? r : r2) }')
		_bench_steps=()
		bench_record c.rke2 "$(stat -c %s "$d/rke2.tar.zst")" -
	done
	compress_check "$d/ferry.tar.zst" "$d/rke2.tar.zst"
	compress_verify "$d/ferry.tar.zst"
	note "compress: input $(bench_fmt_bytes "$(stat -c %s "$in")") ($(bench_fmt_bytes "$BENCH_COMPRESS_SIZE") of files from $(go env GOROOT), four uncompressed layers, two images)"
	rm -rf "$d" "$in"
}

# compress_check FERRY RKE2 : both outputs hold the same images, ferry's
# is metadata-first and passes ferry verify.
compress_check() {
	[ "$(compress_names "$1")" = "$(compress_names "$2")" ] && [ "$(image_count "$1")" = 2 ] ||
		bench_die "compress: ferry's output holds $(compress_names "$1"), rke2's $(compress_names "$2")"
	[ "$("$ferry" list --format json "$1" | bench_json_field metadataFirst)" = 1 ] ||
		bench_die "compress: ferry reorder output is not metadata-first"
	"$ferry" verify -q "$1" >"$work/compress-verify.out" 2>&1 ||
		{ cat "$work/compress-verify.out" >&2; bench_die "compress: ferry verify failed on ferry's output"; }
}

# compress_verify BUNDLE : ferry verify of ferry's output, whose
# uncompressed layers share long-window frames, in its two modes, taking
# turns with zstd -dc | sha256sum (ids c.verify.full, .digests, .pipe).
compress_verify() {
	bench_verify_runs c.verify "$1"
}

# compress_names FILE : the image names ferry lists in FILE, sorted.
compress_names() {
	"$ferry" list --format json "$1" | perl -MJSON::PP -0777 -ne '
		print join(" ", sort map { join(",", @{$_->{names} // []}) } @{decode_json($_)->{images}}), "\n"'
}

compress_report() {
	local f=c.ferry p=c.rke2
	row "compress: ferry reorder" $f
	row "compress: bsdtar x2 + zstd -T0 -16 --long=25" $p
	row "compress: zstd -T0 -16 --long=25 step alone" c.zstd
	ratio "ferry/pipeline (size <= 1.02x, wall <= 0.5x):" $f $p
	bench_has $f && bench_has $p && printf '  %-44s wall %s cpu %s (min/median/max of run pairs)\n' \
		"ferry/pipeline spread:" "$(bench_run_ratios $f $p wall)" "$(bench_run_ratios $f $p cpu)"
	ratio "ferry/zstd step alone:" $f c.zstd
	bench_has $f && bench_has c.zstd && printf '  %-44s wall %s\n' "ferry/zstd step spread:" "$(bench_run_ratios $f c.zstd wall)"
	verify_rows c.verify compress
	return 0
}
