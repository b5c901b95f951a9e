# shellcheck shell=bash
# bench-verify.sh - ferry verify in its two modes against zstd -dc |
# sha256sum, for scripts/bench.sh, which sources this after bench.sh and
# provides $ferry and BENCH_RUNS.
#
#   bench_verify_runs PREFIX BUNDLE [RUNS]
#                                    RUNS (BENCH_RUNS) rounds of `ferry verify`
#                                    (full), `zstd -dc | sha256sum` and
#                                    `ferry verify --digests-only`, in
#                                    turns, recorded as PREFIX.full,
#                                    PREFIX.pipe and PREFIX.digests
#   bench_verify_sizes ID BUNDLE     the same for one size of the sizes
#                                    scenario (ids verify-ID.*, rounds:
#                                    BENCH_SIZES_RUNS), ID given in the
#                                    order sizes grow
#   verify_sizes_report              each size's ratios, with their spread,
#                                    and the peak RSS across sizes
#
# The full mode decompresses every layer for its diff_id, which sha256sum
# does not; --digests-only hashes what is stored, as sha256sum does. Both
# must pass: a bundle that fails verification stops the bench.

VERIFY_SIZE_IDS=() # bench_verify_sizes' IDs, in the order measured

bench_verify_runs() {
	local prefix=$1 bundle=$2 runs=${3:-$BENCH_RUNS} run size digests=1
	size=$(stat -c %s "$bundle")
	# A ferry from before the mode existed (BENCH_FERRY) measures full only.
	# (Not grep -q in a pipe: under pipefail its early exit fails the pipe.)
	[[ $("$ferry" verify --help 2>&1) == *--digests-only* ]] || digests=0
	bench_warm "$bundle"
	for ((run = 1; run <= runs; run++)); do
		bench_say "$prefix: run $run/$runs ($(bench_fmt_bytes "$size"))"
		bench_reset
		bench_step "$ferry" verify -q "$bundle"
		[ "$digests" = 0 ] || grep -q '^mode: full' "$BENCH_WORK/step.out" || bench_die "$prefix: ferry verify did not run the full mode"
		bench_record "$prefix.full" "$size" -
		bench_reset
		# shellcheck disable=SC2016 # $1 is for the inner shell
		bench_step bash -c 'zstd -dcq "$1" | sha256sum' _ "$bundle"
		bench_record "$prefix.pipe" "$size" -
		[ "$digests" = 1 ] || continue
		bench_reset
		bench_step "$ferry" verify -q --digests-only "$bundle"
		grep -q '^mode: digests only' "$BENCH_WORK/step.out" || bench_die "$prefix: ferry verify --digests-only did not say so"
		bench_record "$prefix.digests" "$size" -
	done
}

bench_verify_sizes() {
	bench_verify_runs "verify-$1" "$2" "${BENCH_SIZES_RUNS:-$BENCH_RUNS}"
	VERIFY_SIZE_IDS+=("$1")
}

# verify_ratios PREFIX : full and digests-only against the pipeline,
# medians and the run-by-run spread, with the targets.
verify_ratios() {
	local p=$1
	local m target
	for m in full digests; do
		bench_has "$p.$m" && bench_has "$p.pipe" || continue
		target=1.1
		[ "$m" = digests ] && target=0.6
		ratio "$m/pipeline (target <= ${target}x):" "$p.$m" "$p.pipe" wall cpu rss
		printf '  %-44s %s\n' "  wall, run by run (min/median/max):" "$(bench_run_ratios "$p.$m" "$p.pipe" wall)"
	done
}

# verify_rows PREFIX LABEL : the three rows and the ratios of one bundle.
verify_rows() {
	row "$2: ferry verify (full)" "$1.full"
	row "$2: ferry verify --digests-only" "$1.digests"
	row "$2: zstd -dc | sha256sum" "$1.pipe"
	verify_ratios "$1"
}

# verify_rss_flatness MODE : "ID RSS, ...; max/min N.NNx" over the sizes.
verify_rss_flatness() {
	local mode=$1 id rss list="" all=()
	for id in "${VERIFY_SIZE_IDS[@]}"; do
		rss=$(bench_median "verify-$id.$mode" rss)
		[ "$rss" = - ] && continue
		all+=("$rss")
		list+="${list:+, }$id $(bench_fmt_bytes "$(awk -v k="$rss" 'BEGIN { print k * 1024 }')")"
	done
	[ ${#all[@]} -gt 0 ] || return 0
	printf '%s; max/min %s\n' "$list" "$(printf '%s\n' "${all[@]}" | sort -g | awk 'NR == 1 { a = $1 } { b = $1 } END { printf "%.2fx", b / a }')"
}

verify_sizes_report() {
	local id
	[ ${#VERIFY_SIZE_IDS[@]} -gt 0 ] || return 0
	echo
	echo "verify by size: ferry verify (full, --digests-only) against zstd -dc | sha256sum on each size's ferry bundle"
	printf '%-46s %9s %8s %10s %11s %11s\n' scenario wall cpu 'peak RSS' output fetched
	for id in "${VERIFY_SIZE_IDS[@]}"; do
		verify_rows "verify-$id" "verify $id"
	done
	local m label flat
	for m in full digests pipe; do
		flat=$(verify_rss_flatness "$m")
		[ -n "$flat" ] || continue
		case $m in
			full) label="peak RSS by size, full (target max/min <= 1.10x):" ;;
			digests) label="peak RSS by size, digests-only (target <= 1.10x):" ;;
			pipe) label="peak RSS by size, zstd -dc | sha256sum:" ;;
		esac
		printf '  %-44s %s\n' "$label" "$flat"
	done
}
