# shellcheck shell=bash
# bench.sh - measuring and reporting helpers for scripts/bench.sh.
#
#   bench_init WORKDIR          where samples, logs and GNU time output go
#   bench_reset                 start measuring one scenario run
#   bench_step CMD...           run one step of it, adding to its totals
#   bench_record ID SIZE FETCH  store the run (wall, cpu, RSS, size, fetched)
#   bench_median ID COLUMN      median over the stored runs of ID
#   bench_warm FILE...          read FILEs once, untimed, into the page cache
#   bench_durable_copy ID IN OUT
#                               time copying IN to OUT durably (dd, one
#                               fdatasync), recorded as ID; OUT is removed
#
# A scenario run may be several commands (crane, bsdtar twice, zstd): its
# wall and CPU times are the sums over its steps and its peak RSS is the
# largest of any single process, which is what a machine running the
# pipeline has to have free.
#
# Needs bash >= 5 (EPOCHREALTIME), GNU time at /usr/bin/time, awk and perl
# (JSON::PP is in perl's core, so no jq).

BENCH_WORK=
_bench_wall=0 _bench_cpu=0 _bench_rss=0
# Wall time per command name within the current run (crane, bsdtar, zstd),
# so that a pipeline's total can be broken down.
declare -A _bench_steps=()

bench_die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 1; }
bench_say() { printf '[bench] %s\n' "$*" >&2; }

# bench_warm FILE... : read each FILE once, untimed. An output of ferry's
# leaves the page cache as it is written (reorder/tempfile drops written
# ranges), so without this the first tool to read it would pay the disk
# and every later one would find it cached: the runs that alternate would
# not start even. Read here, every timed run finds it cached.
bench_warm() {
	local f
	for f in "$@"; do
		cat -- "$f" >/dev/null || bench_die "cannot read $f"
	done
}

# bench_durable_copy ID IN OUT : how long a plain copy of IN takes when it,
# too, must be on disk when it exits, as ferry's outputs are (fsync before
# the rename) and the pipeline's are not: dd of the cached input, one
# fdatasync at the end. An untimed sync first, so that the copy does not
# pay for writeback other runs left behind.
bench_durable_copy() {
	sync
	bench_reset
	bench_step dd if="$2" of="$3" bs=8M conv=fdatasync status=none
	bench_record "$1" "$(stat -c %s "$3")" -
	rm -f "$3"
}

bench_init() {
	BENCH_WORK=$1
	mkdir -p "$BENCH_WORK"
	: >"$BENCH_WORK/samples"
	: >"$BENCH_WORK/steps.log"
}

bench_reset() {
	_bench_wall=0 _bench_cpu=0 _bench_rss=0
	_bench_steps=()
}

# bench_step CMD... : run CMD under GNU time. Wall time comes from bash's
# EPOCHREALTIME because time's %e has only 10 ms resolution, too coarse for
# `ferry list`. CMD's output goes to $BENCH_WORK/step.out (kept for the
# caller, e.g. ferry's "fetched" line) and is appended to steps.log.
bench_step() {
	local tf=$BENCH_WORK/time.out out=$BENCH_WORK/step.out t0 t1 u s m
	printf '+ %s\n' "$*" >>"$BENCH_WORK/steps.log"
	t0=$EPOCHREALTIME
	if ! /usr/bin/time -f '%U %S %M' -o "$tf" "$@" >"$out" 2>&1; then
		cat "$out" >>"$BENCH_WORK/steps.log"
		bench_say "step failed: $*"
		tail -n 20 "$out" >&2
		return 1
	fi
	t1=$EPOCHREALTIME
	cat "$out" >>"$BENCH_WORK/steps.log"
	read -r u s m <"$tf"
	read -r _bench_wall _bench_cpu _bench_rss < <(awk -v w="$_bench_wall" -v c="$_bench_cpu" \
		-v r="$_bench_rss" -v t0="$t0" -v t1="$t1" -v u="$u" -v s="$s" -v m="$m" \
		'BEGIN { printf "%.6f %.2f %d\n", w + t1 - t0, c + u + s, (m > r ? m : r) }')
	local name=${1##*/}
	_bench_steps[$name]=$(awk -v a="${_bench_steps[$name]:-0}" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.6f", a + t1 - t0 }')
}

# bench_record ID SIZE FETCHED : store the current run. SIZE (output bytes)
# and FETCHED (bytes the registry served) may be "-".
bench_record() {
	local name
	printf '%s %s %s %s %s %s\n' "$1" "$_bench_wall" "$_bench_cpu" "$_bench_rss" "$2" "$3" \
		>>"$BENCH_WORK/samples"
	# Steps are stored as ID/COMMAND with only a wall time.
	for name in "${!_bench_steps[@]}"; do
		printf '%s/%s %s - - - -\n' "$1" "$name" "${_bench_steps[$name]}" >>"$BENCH_WORK/samples"
	done
}

# bench_breakdown ID : "crane 1.20 s, bsdtar 0.70 s, ..." from the medians
# of the per-command wall times of ID's runs.
bench_breakdown() {
	local id=$1 name out=""
	while read -r name; do
		out+="${out:+, }$name $(bench_fmt_secs "$(bench_median "$id/$name" wall)") s"
	done < <(awk -v p="$id/" 'index($1, p) == 1 { print substr($1, length(p) + 1) }' "$BENCH_WORK/samples" | sort -u)
	printf '%s\n' "$out"
}

# bench_median ID COLUMN : COLUMN is wall|cpu|rss|size|fetched. Each column's
# median is taken on its own. Prints "-" when there is no number.
bench_median() {
	local col
	case $2 in
		wall) col=2 ;; cpu) col=3 ;; rss) col=4 ;; size) col=5 ;; fetched) col=6 ;;
		*) bench_die "bench_median: unknown column $2" ;;
	esac
	awk -v id="$1" -v c="$col" '$1 == id && $c != "-" { print $c }' "$BENCH_WORK/samples" |
		sort -g | awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "-"; exit }
			if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_values ID COLUMN : the stored runs of ID, in the order they ran.
bench_values() {
	local col
	case $2 in
		wall) col=2 ;; cpu) col=3 ;; rss) col=4 ;; size) col=5 ;; fetched) col=6 ;;
		*) bench_die "bench_values: unknown column $2" ;;
	esac
	awk -v id="$1" -v c="$col" '$1 == id { print $c }' "$BENCH_WORK/samples"
}

# bench_spread ID COLUMN : "min/median/max" of a time column, in seconds.
bench_spread() {
	local v
	v=$(bench_values "$1" "$2" | sort -g | awk 'NR == 1 { a = $1 } { b = $1 } END { print a, b }')
	printf '%s/%s/%s\n' "$(bench_fmt_secs "${v% *}")" "$(bench_fmt_secs "$(bench_median "$1" "$2")")" "$(bench_fmt_secs "${v#* }")"
}

# bench_run_ratios A B COLUMN : A/B run by run (the n-th run of A against
# the n-th of B, which ran next to it), as "min/median/max".
bench_run_ratios() {
	paste <(bench_values "$1" "$3") <(bench_values "$2" "$3") |
		awk '$1 != "-" && $2 != "-" && $2 + 0 != 0 { print $1 / $2 }' | sort -g |
		awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "-"; exit }
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.2f/%.2f/%.2fx\n", v[1], m, v[NR] }'
}

bench_has() { awk -v id="$1" '$1 == id { f = 1 } END { exit !f }' "$BENCH_WORK/samples"; }

# ------------------------------------------------------------- formatting

bench_fmt_bytes() {
	awk -v b="$1" 'BEGIN {
		if (b == "-" || b == "") { print "-"; exit }
		if (b >= 1073741824) printf "%.2f GiB\n", b / 1073741824
		else if (b >= 1048576) printf "%.1f MiB\n", b / 1048576
		else if (b >= 1024) printf "%.1f KiB\n", b / 1024
		else printf "%d B\n", b }'
}

bench_fmt_secs() {
	awk -v s="$1" 'BEGIN { if (s == "-") print "-"; else if (s < 0.1) printf "%.3f\n", s; else printf "%.2f\n", s }'
}

# bench_ratio A B [DIGITS] : A/B as "0.42x", or "-" when either is missing
# or B is 0. Ratios of 10 and more are rounded to whole numbers.
bench_ratio() {
	awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN {
		if (a == "-" || b == "-" || b + 0 == 0) { print "-"; exit }
		r = a / b; if (r >= 10) printf "%.0fx\n", r; else printf "%." d "fx\n", r }'
}

# ------------------------------------------------------- registry traffic

# bench_log_mark LOG : the log's current size, to read only what follows.
bench_log_mark() { stat -c %s "$1"; }

# bench_log_bytes LOG MARK : bytes that GET requests after MARK were served,
# from distribution's "response completed" lines (http.response.written).
# Prints "BLOB_BYTES ALL_BYTES": blobs are configs and layers, ALL adds
# manifests and indexes. distribution logs "authorized request" before it
# answers and "response completed" after, possibly after the client has read
# the last byte and exited; so wait until every request has both.
bench_log_bytes() {
	local log=$1 mark=$2 pending
	for _ in $(seq 1 100); do
		pending=$(tail -c +"$((mark + 1))" "$log" |
			awk '/msg="authorized request"/ { n++ } /msg="response completed/ { n-- } END { print n + 0 }')
		[ "$pending" -le 0 ] && break
		sleep 0.1
	done
	[ "$pending" -le 0 ] || bench_say "warning: $pending registry requests never logged a response"
	tail -c +"$((mark + 1))" "$log" | awk '
		/msg="response completed"/ && /http.request.method=GET/ {
			n = 0
			if (match($0, /http\.response\.written=[0-9]+/)) {
				n = substr($0, RSTART, RLENGTH)
				sub(/.*=/, "", n)
			}
			all += n
			if ($0 ~ /http.request.uri="[^"]*\/blobs\/sha256:/) blobs += n
		}
		END { printf "%.0f %.0f\n", blobs, all }'
}

# bench_log_requests LOG MARK : requests the registry answered after MARK
# (every method, every status), once each has logged its response.
bench_log_requests() {
	bench_log_bytes "$1" "$2" >/dev/null
	tail -c +"$(($2 + 1))" "$1" | awk '/msg="response completed"/ { n++ } END { print n + 0 }'
}

# bench_distinct_blobs TARBALL... : sum of the sizes of the distinct configs
# and layers that the tarballs' manifest.json files name (docker-archive
# form, as ferry, crane and docker save all write it). That is what a
# client has to fetch at least once.
bench_distinct_blobs() {
	local f list=$BENCH_WORK/distinct.list
	: >"$list"
	for f in "$@"; do
		{
			_bench_cat "$f" | tar -tv --numeric-owner -f - | awk '{ print "E", $3, $6 }'
			_bench_cat "$f" | tar -xO -f - manifest.json |
				perl -MJSON::PP -0777 -ne 'for my $m (@{decode_json($_)}) { print "M $_\n" for $m->{Config}, @{$m->{Layers}} }'
			printf 'F\n'
		} >>"$list"
	done
	# Entry names differ between tools (blobs/sha256/HEX, HEX.tar.gz,
	# sha256:HEX), so blobs are matched by the hex digest in the name.
	perl -ne '
		my ($t, @f) = split;
		if ($t eq "E") { $size{$f[1]} = $f[0] }
		elsif ($t eq "M") { push @want, $f[0] }
		else {
			for my $n (@want) {
				defined $size{$n} or die "manifest.json names $n, which is not in the archive\n";
				my ($hex) = $n =~ /([0-9a-f]{64})/ or die "no digest in $n\n";
				$blob{$hex} = $size{$n};
			}
			%size = (); @want = ();
		}
		END { my $s = 0; $s += $_ for values %blob; print "$s\n" }' "$list"
}

_bench_cat() {
	case $1 in
		*.zst) zstd -dcq "$1" ;;
		*) cat "$1" ;;
	esac
}

# bench_json_field FIELD : a top-level field of the JSON document on stdin.
bench_json_field() {
	BENCH_FIELD=$1 perl -MJSON::PP -0777 -ne \
		'my $v = decode_json($_)->{$ENV{BENCH_FIELD}}; print defined $v ? "$v\n" : "-\n"'
}
