# shellcheck shell=bash
# bench-push-serve.sh - the push and serve scenarios of scripts/bench.sh,
# which sources this after services.sh and bench.sh and provides $work,
# $ferry, $crane, $reg, refs, OSVER, note, fresh_dir and push_sample.
#
#   push_serve_prepare   sample at BENCH_PUSH_SIZE with distributable Windows
#                        base layers, one ferry bundle of Windows 1809 (three
#                        images), its plain tar and one crane tarball per image
#   bench_push           ferry push of the bundle into a fresh registry
#                        against skopeo copy docker-archive:…:@N and crane
#                        push per image, each into a fresh registry
#   bench_serve          ferry serve of the bundle against distribution
#                        serving the same blobs, 1 and N concurrent pulls
#
# The base layers are made distributable because skopeo and docker leave
# foreign layers out of a push while ferry pushes them: with foreign layers
# the tools would not upload the same bytes.

PS_IMAGES=() # name@digest of each image in the bundle, as manifest.json orders them

# push_serve_prepare : inputs for both scenarios, not timed.
push_serve_prepare() {
	local d=$work/ps i ref
	fresh_dir "$d"
	push_sample "$BENCH_PUSH_SIZE" --distributable-base
	resolve_os_versions
	bench_say "push/serve: bundling Windows 1809 at $(bench_fmt_bytes "$BENCH_PUSH_SIZE")"
	"$ferry" bundle -q -f "$work/windows-images.txt" --windows-version 1809 -o "$d/bundle.tar.zst" --cache "$d/cache" >/dev/null
	rm -rf "$d/cache"
	zstd -dcq "$d/bundle.tar.zst" >"$d/bundle.tar"
	# hex size of every blob stored in the bundle, for counting uploads.
	tar -tv --numeric-owner -f "$d/bundle.tar" |
		awk '$6 ~ /^blobs\/sha256\/[0-9a-f]+$/ && length($6) == 77 { sub(/.*\//, "", $6); print $6, $3 }' >"$d/blobs"
	ps_distinct=$(bench_distinct_blobs "$d/bundle.tar")
	# repository@digest, the host dropped as ferry serve and push drop it.
	mapfile -t PS_IMAGES < <("$ferry" list -o json "$d/bundle.tar" | perl -MJSON::PP -0777 -ne '
		for my $i (@{decode_json($_)->{images}}) {
			my $n = $i->{names}[0]; $n =~ s{^[^/]+/}{}; $n =~ s{[:@][^/]*$}{}; print "$n\@$i->{digest}\n" }')
	# The same order as manifest.json, which skopeo's @N indexes.
	mapfile -t ps_tags < <(tar -xO -f "$d/bundle.tar" manifest.json |
		perl -MJSON::PP -0777 -ne 'print "$_->{RepoTags}[0]\n" for @{decode_json($_)}')
	[ ${#ps_tags[@]} -gt 1 ] || bench_die "push/serve: the bundle holds ${#ps_tags[@]} image(s), want several"
	# crane push takes single-image tarballs; crane pull writes them.
	for i in "${!ps_tags[@]}"; do
		ref=${ps_tags[$i]}
		"$crane" pull --platform "windows/amd64:${OSVER[1809]}" "$ref" "$d/crane-$i.tar"
	done
	note "push/serve: bundle of $(bench_fmt_bytes "$(stat -c %s "$d/bundle.tar.zst")") (.tar.zst), ${#ps_tags[@]} images, $(bench_fmt_bytes "$ps_distinct") of distinct blobs; skopeo reads its plain tar, crane one tarball per image"
}

# fresh_target : a new empty distribution registry (TLS + htpasswd) as the
# push destination; sets dst and dlog.
fresh_target() {
	_svc_stop_pid registry
	rm -rf "$FERRY_SVC_DIR/registry"
	start_registry 2>/dev/null
	use_registry_auth
	export SSL_CERT_FILE=$FERRY_REGISTRY_CA
	dst=$FERRY_REGISTRY
	dlog=$FERRY_SVC_DIR/logs/registry.log
}

# uploaded_bytes LOG DATA : "BYTES COUNT FOREIGN MOUNTS": blobs whose
# upload the registry completed (PUT …/blobs/uploads/…?digest=, 201), each
# counted as often as it was uploaded and sized from the registry's storage
# under DATA; FOREIGN of them have digests the bundle does not hold (the
# tool re-encoded them); and cross-repository mounts (POST …?mount=, 201).
uploaded_bytes() {
	local pending h
	for _ in $(seq 1 50); do
		pending=$(awk '/msg="authorized request"/ { n++ } /msg="response completed/ { n-- } END { print n + 0 }' "$1")
		[ "$pending" -le 0 ] && break
		sleep 0.1
	done
	awk '/msg="response completed"/ && /http.response.status=201/ {
			if (/http.request.method=PUT/ && match($0, /[?&]digest=sha256(:|%3A|%3a)[0-9a-f]+/)) {
				print "U", substr($0, RSTART + RLENGTH - 64, 64)
			} else if (/http.request.method=POST/ && /mount=/) print "M"
		}' "$1" | while read -r t h; do
		if [ "$t" = M ]; then echo M; continue; fi
		echo "U $h $(stat -c %s "$2/docker/registry/v2/blobs/sha256/${h:0:2}/$h/data")"
	done | awk 'NR == FNR { known[$1] = 1; next }
		$1 == "U" { b += $3; n++; if (!($2 in known)) f++ }
		$1 == "M" { m++ }
		END { printf "%.0f %d %d %d\n", b, n, f, m }' "$work/ps/blobs" -
}

# dest_of TAG : TAG's name in the destination registry, as ferry push names
# it: the host replaced, the repository path kept.
dest_of() { printf '%s/%s\n' "$dst" "${1#*/}"; }

# push_check ID : every image of the bundle is in the destination, by its
# repository and tag. Not timed.
push_check() {
	local t
	for t in "${ps_tags[@]}"; do
		"$crane" manifest "$(dest_of "$t")" >/dev/null || bench_die "$1: $(dest_of "$t") is missing after the push"
	done
}

push_record() {
	local id=$1 run=$2 bytes n f m
	read -r bytes n f m < <(uploaded_bytes "$dlog" "$FERRY_SVC_DIR/registry/data")
	bench_record "$id" "$bytes" -
	if [ "$run" = 1 ]; then
		note "push $id: $n blob uploads ($f of them with digests not in the bundle: re-encoded), $(bench_fmt_bytes "$bytes") ($bytes B) uploaded, $m cross-repository mounts; distinct blobs in the bundle: $ps_distinct B"
	fi
	push_check "$id"
}

bench_push() {
	local run d=$work/ps i t policy=$work/ps/policy.json
	echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$policy"
	# The source registry is no longer needed.
	for ((run = 1; run <= BENCH_RUNS; run++)); do
		bench_say "push: run $run/$BENCH_RUNS: ferry push"
		fresh_target
		bench_reset
		bench_step "$ferry" push -q "$d/bundle.tar.zst" --registry "$dst"
		push_record push.ferry "$run"

		bench_say "push: run $run/$BENCH_RUNS: skopeo copy docker-archive:…:@N per image"
		fresh_target
		bench_reset
		for i in "${!ps_tags[@]}"; do
			bench_step skopeo --policy "$policy" copy --quiet --dest-cert-dir "$FERRY_REGISTRY_CERT_DIR" \
				--dest-authfile "$FERRY_REGISTRY_AUTHFILE" "docker-archive:$d/bundle.tar:@$i" "docker://$(dest_of "${ps_tags[$i]}")"
		done
		push_record push.skopeo "$run"

		bench_say "push: run $run/$BENCH_RUNS: crane push per single-image tarball"
		fresh_target
		bench_reset
		for i in "${!ps_tags[@]}"; do
			t=${ps_tags[$i]}
			bench_step "$crane" push "$d/crane-$i.tar" "$(dest_of "$t")"
		done
		push_record push.crane "$run"
	done
	_svc_stop_pid registry
}

# ----------------------------------------------------------------- serve

# start_plain_registry : distribution on plain HTTP without auth, as a
# mirror on loopback is run, serving the bundle's blobs (pushed by ferry,
# not timed). Sets plain. Logs errors only: ferry serve logs nothing either.
start_plain_registry() {
	local r=$work/plainreg port code
	mkdir -p "$r/data"
	port=$(_svc_free_port)
	cat >"$r/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $r/data
http:
  addr: 127.0.0.1:$port
EOF
	_svc_start plainreg "$FERRY_SVC_DIR/logs/plainreg.log" docker-registry serve "$r/config.yml"
	for _ in $(seq 1 150); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/v2/") || code=000
		[ "$code" = 200 ] && break
		sleep 0.1
	done
	[ "$code" = 200 ] || bench_die "plain registry did not start (see $FERRY_SVC_DIR/logs/plainreg.log)"
	plain=127.0.0.1:$port
}

# start_ferry_serve : ferry serve on the bundle, port chosen by the kernel.
# Sets served, and startup: seconds from exec to /v2/ answering 200.
start_ferry_serve() {
	local log=$FERRY_SVC_DIR/logs/serve.log t0 addr="" code=000
	t0=$EPOCHREALTIME
	_svc_start serve "$log" "$ferry" serve "$work/ps/bundle.tar.zst" --addr 127.0.0.1:0
	for _ in $(seq 1 3000); do
		addr=$(sed -n 's|^serving .* at http://\(.*\)$|\1|p' "$log")
		[ -n "$addr" ] && break
		_svc_alive serve || break
		sleep 0.005
	done
	[ -n "$addr" ] || { cat "$log" >&2; bench_die "ferry serve did not start"; }
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/v2/") || true
	[ "$code" = 200 ] || bench_die "ferry serve: /v2/ answered $code"
	startup=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')
	served=$addr
}

# pull_batch N CRANE REF... : N concurrent crane pulls of REFs, each into
# /dev/null: crane still fetches every blob (shared layers once per pull)
# and checks it against its digest, and no disk write is measured.
# shellcheck disable=SC2016 # for the inner shell
pull_batch() {
	# wait PID, not wait -n: pulls that end together make wait -n answer
	# 127 (no child left) for the ones already reaped.
	bench_step bash -c 'n=$1 crane=$2; shift 2; pids=()
		for ((k = 0; k < n; k++)); do "$crane" pull --insecure "$@" /dev/null & pids+=($!); done
		rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done; exit $rc' _ "$@"
}

# hwm PID : the process's peak RSS in KiB.
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# cpu_secs PID : the process's user+system CPU time so far, in seconds.
cpu_secs() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / t }' "/proc/$1/stat"; }

# serve_measure ID HOST N PID : one timed batch of N pulls; its CPU column
# is the server's CPU time during the batch and its RSS column the server's
# peak RSS since it started.
serve_measure() {
	local id=$1 host=$2 n=$3 pid=$4 img refs=()
	for img in "${PS_IMAGES[@]}"; do refs+=("$host/$img"); done
	local c0
	c0=$(cpu_secs "$pid")
	bench_reset
	pull_batch "$n" "$crane" "${refs[@]}"
	_bench_rss=$(hwm "$pid")
	_bench_cpu=$(awk -v a="$c0" -v b="$(cpu_secs "$pid")" 'BEGIN { printf "%.2f", b - a }')
	bench_record "$id" "$((ps_pulled * n))" -
}

bench_serve() {
	local run n
	# A pull fetches the distinct blobs once (crane skips a layer it has
	# written); manifests are not counted.
	ps_pulled=$ps_distinct
	for ((run = 1; run <= BENCH_RUNS; run++)); do
		for n in "${SERVE_PULLS[@]}"; do
			bench_say "serve: run $run/$BENCH_RUNS: $n concurrent pulls from ferry serve"
			start_ferry_serve
			bench_reset
			_bench_wall=$startup
			_bench_cpu=$(cpu_secs "$(_svc_pid serve)")
			_bench_rss=$(hwm "$(_svc_pid serve)")
			bench_record serve.startup - -
			serve_measure "serve.$n.ferry" "$served" "$n" "$(_svc_pid serve)"
			_svc_stop_pid serve

			bench_say "serve: run $run/$BENCH_RUNS: $n concurrent pulls from distribution"
			[ "$run.$n" = "1.${SERVE_PULLS[0]}" ] && populate_plain
			start_plain_registry
			serve_measure "serve.$n.dist" "$plain" "$n" "$(_svc_pid plainreg)"
			_svc_stop_pid plainreg
		done
	done
}

# populate_plain : push the bundle into the plain registry once.
populate_plain() {
	rm -rf "$work/plainreg"
	start_plain_registry
	"$ferry" push -q "$work/ps/bundle.tar.zst" --registry "$plain" --insecure-registry "$plain" >/dev/null
	_svc_stop_pid plainreg
}

# ---------------------------------------------------------------- report

# ps_row LABEL ID : wall min/median/max, CPU, peak RSS and bytes (uploaded
# for push, pulled for serve) of ID's runs.
ps_row() {
	bench_has "$2" || return 0
	printf '%-44s %20s %8s %10s %11s\n' "$1" "$(bench_spread "$2" wall)" \
		"$(bench_fmt_secs "$(bench_median "$2" cpu)")" \
		"$(bench_fmt_bytes "$(awk -v k="$(bench_median "$2" rss)" 'BEGIN { print (k == "-" ? "-" : k * 1024) }')")" \
		"$(bench_fmt_bytes "$(bench_median "$2" size)")"
}

# best_of ID... : the ID with the lowest median wall time.
best_of() {
	local id best="" bw w
	for id in "$@"; do
		bench_has "$id" || continue
		w=$(bench_median "$id" wall)
		if [ -z "$best" ] || awk -v a="$w" -v b="$bw" 'BEGIN { exit !(a < b) }'; then best=$id bw=$w; fi
	done
	printf '%s\n' "$best"
}

# mibps ID : median throughput in MiB/s (bytes pulled / wall).
mibps() {
	awk -v b="$(bench_median "$1" size)" -v w="$(bench_median "$1" wall)" 'BEGIN { printf "%.0f MiB/s\n", b / w / 1048576 }'
}

push_serve_report() {
	local best n
	echo
	echo "push and serve: a Windows 1809 bundle at $(bench_fmt_bytes "$BENCH_PUSH_SIZE") of sample data ($(bench_fmt_bytes "$ps_distinct") of distinct blobs, ${#ps_tags[@]} images)"
	printf '%-44s %20s %8s %10s %11s\n' scenario 'wall min/med/max' cpu 'peak RSS' bytes
	if want push; then
		ps_row "push: ferry push .tar.zst" push.ferry
		ps_row "push: skopeo copy docker-archive:@N x${#ps_tags[@]}" push.skopeo
		ps_row "push: crane push x${#ps_tags[@]} tarballs" push.crane
		skipped "push: docker load/tag/push" "not run: docker on Linux refuses Windows images (cannot load windows image on linux)"
		best=$(best_of push.skopeo push.crane)
		if [ -n "$best" ]; then
			printf '  %-42s wall %s (run by run: %s), rss %s\n' "ferry/best (${best#push.}):" \
				"$(bench_ratio "$(bench_median push.ferry wall)" "$(bench_median "$best" wall)")" \
				"$(bench_run_ratios push.ferry "$best" wall)" \
				"$(bench_ratio "$(bench_median push.ferry rss)" "$(bench_median "$best" rss)")"
		fi
		echo "  bytes: blob bytes whose upload the registry completed, each upload counted (distinct: $ps_distinct B)"
	fi
	if want serve; then
		ps_row "serve: ferry serve start-up (exec to /v2/ 200)" serve.startup
		for n in "${SERVE_PULLS[@]}"; do
			ps_row "serve, $n pull(s): ferry serve .tar.zst" "serve.$n.ferry"
			ps_row "serve, $n pull(s): distribution (plain HTTP)" "serve.$n.dist"
			bench_has "serve.$n.ferry" && bench_has "serve.$n.dist" || continue
			printf '  %-42s %s vs %s; ferry/distribution %s (run by run: %s), server RSS %s\n' "throughput:" \
				"$(mibps "serve.$n.ferry")" "$(mibps "serve.$n.dist")" \
				"$(bench_ratio "$(bench_median "serve.$n.dist" wall)" "$(bench_median "serve.$n.ferry" wall)")" \
				"$(bench_run_ratios "serve.$n.dist" "serve.$n.ferry" wall)" \
				"$(bench_ratio "$(bench_median "serve.$n.ferry" rss)" "$(bench_median "serve.$n.dist" rss)")"
		done
		echo "  serve rows: wall of N concurrent 'crane pull' of every image into /dev/null; cpu: the server's during"
		echo "  the batch; peak RSS: the server's (VmHWM from its start to the end of the batch; a fresh server"
		echo "  per batch); bytes: pulled in the batch"
	fi
}
