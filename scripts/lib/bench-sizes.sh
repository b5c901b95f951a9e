# shellcheck shell=bash
# bench-sizes.sh - the "sizes" scenario of scripts/bench.sh: `ferry reorder`
# against rke2's two bsdtar passes + zstd -T0 -3 on manifest-last tarballs
# of growing size, to show whether reorder stays steady as the input
# outgrows what the page cache absorbs. scripts/bench.sh sources this after
# bench.sh and provides $work, $ferry, $have_reorder, bsdtar_reorder_steps,
# image_count, fresh_dir and note.
#
#   run_sizes     for each size: build the input (scripts/lib/sizesinput:
#                 gzip'd random layers in crane's tarball layout, no
#                 registry), BENCH_SIZES_RUNS alternating pairs, each
#                 followed by a durable copy (bench_durable_copy), check the
#                 outputs, call bench_verify_sizes ID BUNDLE if a verify
#                 helper defines it, delete everything of that size
#   sizes_report  per size: both sides' wall min/med/max, CPU, system time,
#                 peak RSS, output; ferry/pipeline medians, the ratios run
#                 by run, and each side's spread (max/min wall); ferry
#                 against that copy, and its spread
#
# Environment:
#   BENCH_SIZES       input sizes, in GiB (0.5) or bytes ("0.5 1 2 4")
#   BENCH_SIZES_RUNS  pairs per size (5)
# BENCH_QUICK=1 shrinks the default sizes to a few MiB and the runs to 2.
# Disk: the input, one side's outputs and the kept ferry bundle, about 4x
# the largest size (16 GiB at 4 GiB).

SIZES_IDS=() # s-LABEL per size measured, in order

# sizes_bytes SPEC : a size in bytes; SPEC is bytes when it is an integer of
# at least 1 MiB, else GiB.
sizes_bytes() {
	awk -v s="$1" 'BEGIN {
		if (s !~ /^[0-9]*\.?[0-9]+$/) exit 1
		if (s >= 1048576 && s == int(s)) printf "%.0f\n", s; else printf "%.0f\n", s * 1073741824 }'
}

# sizes_label BYTES : "0.5G", "4G", "6M": short, unique per size, for IDs.
sizes_label() {
	awk -v b="$1" 'BEGIN { if (b >= 1073741824 / 8) printf "%gG\n", b / 1073741824; else printf "%gM\n", b / 1048576 }'
}

# sizes_sys ID : add the last step's system time (GNU time's %S, which
# bench_step leaves in time.out) to ID's current run.
_sizes_sys=0
sizes_add_sys() {
	local u s m
	read -r u s m <"$BENCH_WORK/time.out"
	_sizes_sys=$(awk -v a="$_sizes_sys" -v s="$s" 'BEGIN { printf "%.2f", a + s }')
}

sizes_record() {
	bench_record "$1" "$2" -
	printf '%s %s\n' "$1" "$_sizes_sys" >>"$BENCH_WORK/sizes-sys"
	_sizes_sys=0
}

sizes_sys_median() {
	awk -v id="$1" '$1 == id { print $2 }' "$BENCH_WORK/sizes-sys" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit }
			if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# sizes_ferry ID IN OUT / sizes_pipe ID IN OUT : one timed run of each side.
sizes_ferry() {
	bench_say "$1: ferry reorder"
	bench_reset
	bench_step "$ferry" reorder "$2" -o "$3"
	sizes_add_sys
	sizes_record "$1.ferry" "$(stat -c %s "$3")"
}

sizes_pipe() {
	bench_say "$1: bsdtar x2 + zstd -T0 -3"
	bench_reset
	bsdtar_reorder_steps "$2" "$3.tar"
	sizes_add_sys
	bench_step zstd -T0 -3 -q -f "$3.tar" -o "$3"
	sizes_add_sys
	sizes_record "$1.pipe" "$(stat -c %s "$3")"
	rm -f "$3.tar"
	# ferry's output is durable when it exits (fsync before the rename);
	# the pipeline's is still in the page cache. Timed apart, so that the
	# pipeline row stays what rke2 runs, and reported as its own ratio.
	bench_reset
	bench_step sync "$3"
	sizes_record "$1.pipesync" -
}

run_sizes() {
	local spec b id in d=$work/sizes run
	local -a specs
	[ "$have_reorder" = 1 ] || { note "sizes: skipped, ferry reorder not built"; return 0; }
	if [ "${BENCH_QUICK:-0}" = 1 ]; then
		: "${BENCH_SIZES:=$((3 * MIB)) $((6 * MIB))}" "${BENCH_SIZES_RUNS:=2}"
	fi
	read -r -a specs <<<"${BENCH_SIZES:-0.5 1 2 4}"
	local runs=${BENCH_SIZES_RUNS:-5}
	: >"$BENCH_WORK/sizes-sys"
	fresh_dir "$d"
	go build -o "$d/sizesinput" ./scripts/lib/sizesinput
	for spec in "${specs[@]}"; do
		b=$(sizes_bytes "$spec") || bench_die "BENCH_SIZES: bad size $spec"
		id=s-$(sizes_label "$b")
		in=$d/$id.tar
		bench_say "$id: building a manifest-last tarball of $(bench_fmt_bytes "$b")"
		"$d/sizesinput" "$in" "$b"
		SIZES_IDS+=("$id")
		printf '%s %s\n' "$id" "$(stat -c %s "$in")" >>"$BENCH_WORK/sizes-inputs"
		for ((run = 1; run <= runs; run++)); do
			rm -f "$d/ferry.tar.zst" "$d/pipe.tar.zst"
			bench_say "$id: pair $run/$runs"
			# Who goes first alternates, so neither always meets the
			# page cache and writeback the other left behind.
			if ((run % 2)); then
				sizes_ferry "$id" "$in" "$d/ferry.tar.zst"
				sizes_pipe "$id" "$in" "$d/pipe.tar.zst"
			else
				sizes_pipe "$id" "$in" "$d/pipe.tar.zst"
				sizes_ferry "$id" "$in" "$d/ferry.tar.zst"
			fi
			bench_say "$id: durable copy (dd conv=fdatasync)"
			bench_durable_copy "$id.dcopy" "$in" "$d/copy.tar"
		done
		[ "$("$ferry" list --format json "$d/ferry.tar.zst" | bench_json_field metadataFirst)" = 1 ] ||
			bench_die "$id: ferry reorder output is not metadata-first"
		[ "$(image_count "$d/ferry.tar.zst")" = "$(image_count "$d/pipe.tar.zst")" ] ||
			bench_die "$id: ferry reorder and the pipeline disagree on the images"
		rm -f "$d/pipe.tar.zst" "$in"
		if declare -F bench_verify_sizes >/dev/null; then
			bench_verify_sizes "$id" "$d/ferry.tar.zst"
		fi
		rm -f "$d/ferry.tar.zst"
	done
	rm -rf "$d"
}

# sizes_srow LABEL ID : wall min/med/max, CPU, system, RSS, output.
sizes_srow() {
	bench_has "$2" || return 0
	printf '%-36s %20s %8s %8s %10s %11s\n' "$1" "$(bench_spread "$2" wall)" \
		"$(bench_fmt_secs "$(bench_median "$2" cpu)")" "$(bench_fmt_secs "$(sizes_sys_median "$2")")" \
		"$(bench_fmt_bytes "$(awk -v k="$(bench_median "$2" rss)" 'BEGIN { print (k == "-" ? "-" : k * 1024) }')")" \
		"$(bench_fmt_bytes "$(bench_median "$2" size)")"
}

# sizes_wide ID : max/min wall over ID's runs.
sizes_wide() {
	bench_values "$1" wall | sort -g | awk 'NR == 1 { a = $1 } { b = $1 } END { if (a > 0) printf "%.2f\n", b / a; else print "-" }'
}

sizes_report() {
	local id in r fs ps
	echo
	echo "sizes: ferry reorder against bsdtar x2 + zstd -T0 -3, by input size; ${BENCH_SIZES_RUNS:-5} alternating pairs per size"
	echo "(target: ferry/pipeline wall <= 0.70x at every size, ferry's spread no wider than the pipeline's)"
	printf '%-36s %20s %8s %8s %10s %11s\n' scenario 'wall min/med/max' cpu sys 'peak RSS' output
	for id in "${SIZES_IDS[@]}"; do
		in=$(awk -v id="$id" '$1 == id { print $2 }' "$BENCH_WORK/sizes-inputs")
		sizes_srow "reorder $(bench_fmt_bytes "$in"): ferry" "$id.ferry"
		sizes_srow "reorder $(bench_fmt_bytes "$in"): pipeline" "$id.pipe"
		sizes_srow "reorder $(bench_fmt_bytes "$in"): durable copy" "$id.dcopy"
		bench_has "$id.ferry" && bench_has "$id.pipe" || continue
		r=$(bench_ratio "$(bench_median "$id.ferry" wall)" "$(bench_median "$id.pipe" wall)")
		fs=$(sizes_wide "$id.ferry") ps=$(sizes_wide "$id.pipe")
		printf '  %-34s wall %s (run by run: %s), cpu %s, sys %s, rss %s, size %s\n' "ferry/pipeline:" "$r" \
			"$(bench_run_ratios "$id.ferry" "$id.pipe" wall)" \
			"$(bench_ratio "$(bench_median "$id.ferry" cpu)" "$(bench_median "$id.pipe" cpu)")" \
			"$(bench_ratio "$(sizes_sys_median "$id.ferry")" "$(sizes_sys_median "$id.pipe")")" \
			"$(bench_ratio "$(bench_median "$id.ferry" rss)" "$(bench_median "$id.pipe" rss)")" \
			"$(bench_ratio "$(bench_median "$id.ferry" size)" "$(bench_median "$id.pipe" size)" 3)"
		bench_has "$id.pipesync" && printf '  %-34s wall %s (sync of its output: %s s median)\n' \
			"ferry/(pipeline + sync FILE):" \
			"$(bench_ratio "$(bench_median "$id.ferry" wall)" "$(awk -v a="$(bench_median "$id.pipe" wall)" \
				-v b="$(bench_median "$id.pipesync" wall)" 'BEGIN { print a + b }')")" \
			"$(bench_fmt_secs "$(bench_median "$id.pipesync" wall)")"
		bench_has "$id.dcopy" && printf '  %-34s wall %s (run by run: %s); its spread %sx\n' "ferry/durable copy:" \
			"$(bench_ratio "$(bench_median "$id.ferry" wall)" "$(bench_median "$id.dcopy" wall)")" \
			"$(bench_run_ratios "$id.ferry" "$id.dcopy" wall)" "$(sizes_wide "$id.dcopy")"
		printf '  %-34s ferry %sx, pipeline %sx: %s\n' "spread (max/min wall):" "$fs" "$ps" \
			"$(awk -v r="${r%x}" -v f="$fs" -v p="$ps" 'BEGIN {
				ok = (r != "-" && r + 0 <= 0.70 && f + 0 <= p + 0)
				print ok ? "meets the target" : "MISSES the target" }')"
	done
}
