# shellcheck shell=bash
# faults-kill.sh - kill -9 at random moments of `bundle` and of in-place
# `reorder`, sourced by e2e-faults.sh (uses its $work, $ferry, $reg, $imgs).

# temps DIR... : ferry's temp files under DIR.
temps() { find "$@" \( -name '.*.tmp-*' -o -name '.tmp-*' -o -name '.ferry-reorder-*' \) -type f 2>/dev/null; }

# kill_at ARGS... : start ferry ARGS, kill -9 it after a random share of
# $span seconds (it may have finished by then).
kill_at() {
	"$ferry" "$@" >/dev/null 2>&1 &
	local pid=$!
	sleep "$(perl -e "printf '%.3f', $span * $((RANDOM % 1000)) / 1000")"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

echo "== kill -9 during bundle"
refs=()
for i in "${imgs[@]}"; do refs+=("$reg/$i"); done
kdir=$work/kill
mkdir -p "$kdir"
bundle_args() { echo bundle "${refs[@]}" --windows-version 1809,ltsc2022 -o "$1/{version}.tar.zst" --cache "$1/cache" -q; }
bundle_direct() { "$ferry" $(bundle_args "$1"); }
t0=$(date +%s.%N)
bundle_direct "$work/kill-clean" >/dev/null
span=$(perl -e "printf '%.3f', $(date +%s.%N) - $t0 + 0.2")
echo "     a clean run takes ${span}s"
dirty=0 most=0
for _ in $(seq "$kills"); do
	rm -rf "$kdir/cache/sha256/"[0-9a-f]* 2>/dev/null || true # so every run downloads
	# shellcheck disable=SC2046 # paths without spaces
	kill_at $(bundle_args "$kdir")
	n=$(temps "$kdir" | wc -l)
	if [ "$n" -gt 0 ]; then dirty=$((dirty + 1)); fi
	most=$((n > most ? n : most))
done
echo "     $dirty of $kills kills left temp files behind (at most $most at once; each run sweeps them)"
bundle_direct "$kdir" >/dev/null
left=$(temps "$kdir")
if [ -z "$left" ]; then ok "bundle after $kills kills: no temp files"; else bad "bundle after $kills kills: left $left"; fi
cmp -s "$kdir/ltsc2022.tar.zst" "$work/kill-clean/ltsc2022.tar.zst" && cmp -s "$kdir/1809.tar.zst" "$work/kill-clean/1809.tar.zst" &&
	ok "bundle after $kills kills: identical bundles" || bad "bundle after $kills kills: bundles differ"

echo "== kill -9 during in-place reorder"
rdir=$work/reorder
mkdir -p "$rdir"
"$ferry" bundle "${refs[@]}" --windows-version 1809 -o "$rdir/src.tar.gz" --cache "$kdir/cache" -q >/dev/null
cp "$rdir/src.tar.gz" "$rdir/clean.tar.gz"
t0=$(date +%s.%N)
"$ferry" reorder "$rdir/clean.tar.gz" >/dev/null
span=$(perl -e "printf '%.3f', $(date +%s.%N) - $t0 + 0.2")
echo "     a clean in-place reorder takes ${span}s"
cp "$rdir/src.tar.gz" "$rdir/victim.tar.gz"
dirty=0
for _ in $(seq "$kills"); do
	kill_at reorder "$rdir/victim.tar.gz"
	if [ -n "$(temps "$rdir")" ]; then dirty=$((dirty + 1)); fi
done
echo "     $dirty of $kills kills left temp files behind"
"$ferry" reorder "$rdir/victim.tar.gz" >/dev/null
cmp -s "$rdir/victim.tar.gz" "$rdir/clean.tar.gz" && ok "reorder after $kills kills: identical output" ||
	bad "reorder after $kills kills: output differs"
left=$(temps "$rdir")
if [ -z "$left" ]; then ok "reorder after $kills kills: no temp files"; else bad "reorder after $kills kills: left $left"; fi
