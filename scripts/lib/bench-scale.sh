# shellcheck shell=bash
# bench-scale.sh - the scale scenario of scripts/bench.sh, which sources this
# after services.sh and bench.sh and provides $work, $ferry, $crane, note,
# fresh_dir, file_sizes, image_count, bsdtar_reorder_steps and row.
#
#   run_scale     for each count in BENCH_SCALE_COUNTS ("1000 5000"; 20 and
#                 50 with BENCH_QUICK=1): push that many small distinct
#                 images (a shared base layer and a 1 KiB layer each, one
#                 repository per image), then, taking turns, ferry bundle of
#                 all of them for linux/amd64 against crane pull of all of
#                 them into one tarball, rke2's two bsdtar passes and zstd
#                 -T0 -3; then ferry list of the largest bundle against
#                 bsdtar -xqOf on the pipeline's manifest-last .tar.zst
#   scale_report  the table: wall, CPU, peak RSS, output, registry requests,
#                 and ferry/pipeline ratios run by run (min/median/max)
#
# The registry is restarted empty for this scenario with its htpasswd entry
# hashed at bcrypt cost 4 instead of 10: distribution checks the password on
# every request, and at cost 10 that CPU (tens of ms a request, on the same
# cores) would be most of what either tool waits for with thousands of
# images. Both tools pay the same per request.

SCALE_COUNTS=()

# scale_start_registry : a fresh registry with cheap password checks; sets
# reg and reglog as start_services does.
scale_start_registry() {
	_svc_stop_pid registry
	rm -rf "$FERRY_SVC_DIR/registry"
	FERRY_SVC_BCRYPT_COST=4 start_registry 2>/dev/null
	use_registry_auth
	export SSL_CERT_FILE=$FERRY_REGISTRY_CA
	reg=$FERRY_REGISTRY
	reglog=$FERRY_SVC_DIR/logs/registry.log
}

# scale_requests ID COUNT / scale_requests_median ID : registry requests
# per run, kept beside the samples.
scale_requests() { printf '%s %s\n' "$1" "$2" >>"$BENCH_WORK/requests"; }
scale_requests_median() {
	awk -v id="$1" '$1 == id { print $2 }' "$BENCH_WORK/requests" 2>/dev/null | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# scale_push N : push N images; leaves their references in $work/scale-N.txt.
scale_push() {
	local n=$1 t0=$EPOCHREALTIME
	bench_say "scale: pushing $n small images"
	"$work/e2eimages" push "$reg/scale$n/img" "$n" 16 >"$work/scale-$n.txt" 2>"$work/scale-push.log" ||
		{ cat "$work/scale-push.log" >&2; bench_die "scale: pushing $n images failed"; }
	bench_say "scale: pushed $n images in $(bench_fmt_secs "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')") s"
}

# scale_bundle N : ferry bundle against crane + bsdtar x2 + zstd, in turns.
# Keeps the last runs' outputs as $work/scale-N.ferry.tar.zst and, for
# list, the pipeline's manifest-last tarball as $work/scale-N.mlast.tar.zst.
scale_bundle() {
	local n=$1 id=scale.$1 run d=$work/run mark blobs all fcount
	local -a refs_n
	mapfile -t refs_n <"$work/scale-$n.txt"
	for ((run = 1; run <= BENCH_RUNS; run++)); do
		bench_say "scale $n: run $run/$BENCH_RUNS: ferry bundle"
		fresh_dir "$d"
		mark=$(bench_log_mark "$reglog")
		bench_reset
		bench_step "$ferry" bundle -q -f "$work/scale-$n.txt" --platform linux/amd64 \
			-o "$d/ferry.tar.zst" --cache "$d/cache"
		read -r blobs all < <(bench_log_bytes "$reglog" "$mark")
		scale_requests "$id.ferry" "$(bench_log_requests "$reglog" "$mark")"
		bench_record "$id.ferry" "$(stat -c %s "$d/ferry.tar.zst")" "$blobs"
		rm -rf "$d/cache"
		mv "$d/ferry.tar.zst" "$work/scale-$n.ferry.tar.zst"

		bench_say "scale $n: run $run/$BENCH_RUNS: crane pull + bsdtar x2 + zstd -T0 -3"
		fresh_dir "$d"
		mark=$(bench_log_mark "$reglog")
		bench_reset
		bench_step "$crane" pull --platform linux/amd64 "${refs_n[@]}" "$d/crane.tar"
		read -r blobs all < <(bench_log_bytes "$reglog" "$mark")
		scale_requests "$id.pipe" "$(bench_log_requests "$reglog" "$mark")"
		bsdtar_reorder_steps "$d/crane.tar" "$d/reordered.tar"
		bench_step zstd -T0 -3 -q -f "$d/reordered.tar" -o "$d/pipe.tar.zst"
		bench_record "$id.pipe" "$(stat -c %s "$d/pipe.tar.zst")" "$blobs"
	done
	fcount=$(image_count "$work/scale-$n.ferry.tar.zst")
	[ "$fcount" = "$n" ] || bench_die "scale $n: ferry bundled $fcount images"
	[ "$(image_count "$d/pipe.tar.zst")" = "$n" ] || bench_die "scale $n: the pipeline bundled $(image_count "$d/pipe.tar.zst") images"
	# crane writes manifest.json last, as docker save does: what a
	# pipeline without the reorder ships.
	zstd -T0 -3 -q -f "$d/crane.tar" -o "$work/scale-$n.mlast.tar.zst"
	rm -rf "$d"
}

# scale_list N : ferry list of the ferry bundle against the fastest way to
# get manifest.json out of a manifest-last .tar.zst (bsdtar -q stops at the
# first match; here that is the last entry).
scale_list() {
	local n=$1 bundle=$work/scale-$1.ferry.tar.zst mlast=$work/scale-$1.mlast.tar.zst run
	bench_warm "$bundle" "$mlast"
	for ((run = 1; run <= BENCH_RUNS; run++)); do
		bench_say "scale $n: list: run $run/$BENCH_RUNS"
		bench_reset
		bench_step "$ferry" list --format json "$bundle"
		bench_record "scale.list.ferry" "$(stat -c %s "$bundle")" -
		bench_reset
		bench_step bsdtar -xqOf "$mlast" manifest.json
		grep -q RepoTags "$BENCH_WORK/step.out" || bench_die "no manifest.json in $mlast"
		bench_record "scale.list.bsdtar" "$(stat -c %s "$mlast")" -
	done
	SCALE_LIST_N=$n
}

run_scale() {
	local n
	if [ -n "${BENCH_SCALE_COUNTS:-}" ]; then
		read -r -a SCALE_COUNTS <<<"$BENCH_SCALE_COUNTS"
	elif [ "${BENCH_QUICK:-0}" = 1 ]; then
		SCALE_COUNTS=(20 50)
	else
		SCALE_COUNTS=(1000 5000)
	fi
	go build -o "$work/e2eimages" ./scripts/lib/e2eimages
	scale_start_registry
	note "scale: registry restarted empty, htpasswd at bcrypt cost 4 (see scripts/lib/bench-scale.sh)"
	for n in "${SCALE_COUNTS[@]}"; do
		scale_push "$n"
		scale_bundle "$n"
	done
	scale_list "${SCALE_COUNTS[-1]}"
}

# scale_row LABEL ID : row plus the median registry requests.
scale_row() {
	bench_has "$2" || return 0
	printf '%s %9s\n' "$(row "$1" "$2")" "$(scale_requests_median "$2")"
}

# scale_ratios ID_A ID_B : medians' ratios and run-by-run spread.
scale_ratios() {
	bench_has "$1" && bench_has "$2" || return 0
	ratio "ferry/pipeline (medians):" "$1" "$2" wall cpu rss size
	printf '  %-44s wall %s, rss %s\n' "ferry/pipeline run by run (min/med/max):" \
		"$(bench_run_ratios "$1" "$2" wall)" "$(bench_run_ratios "$1" "$2" rss)"
}

scale_report() {
	local n
	echo
	printf '%-46s %9s %8s %10s %11s %11s %9s\n' "scale (small images, linux/amd64)" wall cpu 'peak RSS' output fetched requests
	for n in "${SCALE_COUNTS[@]}"; do
		scale_row "bundle $n images: ferry bundle" "scale.$n.ferry"
		scale_row "bundle $n images: crane + bsdtar x2 + zstd" "scale.$n.pipe"
		scale_ratios "scale.$n.ferry" "scale.$n.pipe"
		bench_has "scale.$n.pipe" && printf '  %-44s %s\n' "pipeline steps:" "$(bench_breakdown "scale.$n.pipe")"
	done
	row "list ${SCALE_LIST_N:-?} images: ferry list --format json" scale.list.ferry
	row "list: bsdtar -xqOf MANIFEST_LAST.tar.zst" scale.list.bsdtar
	ratio "bsdtar/ferry (speed-up):" scale.list.bsdtar scale.list.ferry wall
	bench_has scale.list.ferry && printf '  %-44s %s\n' "bsdtar/ferry run by run (min/med/max):" \
		"$(bench_run_ratios scale.list.bsdtar scale.list.ferry wall)"
	echo "scale requests: every request the registry answered (pings, manifests, blobs), from its log;"
	echo "crane's count is its pull alone."
}
