#!/bin/sh
# mutate.sh: the mutation check of issue 6. For every `+=` in the code (not the comments) of
# every shaders/*.metal file, in turn, it turns that one `+=` into `-=`, regenerates the
# emulator's kernels, runs the metal package's tests, and reports the mutants that no test
# kills (survivors).
#
# It works on a copy of the module (so the shared tree never holds a mutated shader) and is
# slow (one emulator build and test run per `+=`, ~15 s each): run it by hand, not in CI.
#
#   sh metal/testdata/mutate.sh            # from the module root
#   TESTFLAGS='-run TestConformance' sh metal/testdata/mutate.sh
set -eu
root=$(pwd)
[ -f "$root/go.mod" ] && [ -d "$root/shaders" ] || { echo "run from the module root" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && tar --exclude=.git -cf - .) | (cd "$work" && tar -xf -)
cd "$work"
# code_plus_eq FILE K: FILE with its K-th `+=` outside // comments turned into `-=`
# (K = 0 changes nothing); it prints the number of such `+=` to stderr.
code_plus_eq() {
	perl -ne 'BEGIN { $k = shift @ARGV; $n = 0 }
		chomp; my ($c, $m) = /^(.*?)(\/\/.*)?$/; $m //= "";
		$c =~ s/\+=/++$n == $k ? "-=" : "+="/ge;
		print "$c$m\n";
		END { print STDERR "$n\n" }' "$2" "$1"
}
total=0
survived=0
for f in shaders/*.metal; do
	n=$(code_plus_eq "$f" 0 2>&1 >/dev/null)
	k=1
	while [ "$k" -le "$n" ]; do
		total=$((total + 1))
		cp "$f" "$f.orig"
		code_plus_eq "$f.orig" "$k" > "$f" 2>/dev/null
		line=$(diff "$f.orig" "$f" | sed -n 's/^\([0-9]*\)c.*/\1/p' | head -1)
		if ! go generate ./metal/emu/ > "$work/gen.log" 2>&1; then
			echo "killed   $f:$line (generator rejected it)"
		elif go test -count=1 -failfast ${TESTFLAGS:-} ./metal/ > "$work/test.log" 2>&1; then
			survived=$((survived + 1))
			echo "SURVIVED $f:$line: $(sed -n "${line}p" "$f" | sed 's/^[ \t]*//')"
		else
			echo "killed   $f:$line"
		fi
		mv "$f.orig" "$f"
		k=$((k + 1))
	done
done
echo "mutants: $total, survivors: $survived"
[ "$survived" -eq 0 ]
