#!/usr/bin/env bash
# Checks a kit made by bench/device/make_kit.sh on this machine: links linkstyle and bench_sweep
# the way bench/device/build_and_bench.sh does (static OpenCV and the kit's stubs), but against
# Debian's libtorch, then runs a small bench_sweep and a tiny study (pairs, fit, sweep, reading
# PNG images in reconstruct) through them. A stub that is reached stops the run.
# Usage, from the repository root after `make build`: bench/device/check_kit.sh <kit> <build folder>
set -euo pipefail
kit=$(realpath "$1"); build=${2:-build}; out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for module in core imgproc video imgcodecs; do xz -dc "$kit/lib/libopencv_$module.a.xz" > "$out/libopencv_$module.a"; done
gcc -c "$kit/stubs.S" -o "$out/stubs.o"
libraries=("$out/stubs.o" -Wl,--start-group "$out"/libopencv_{imgcodecs,video,imgproc,core}.a -Wl,--end-group
  -ltorch -ltorch_cpu -lc10 -lfmt -ltomlplusplus -lsqlite3 -lz -lpng16 -ljpeg -ltbb)
g++ -o "$out/bench_sweep" "$build/bench/CMakeFiles/bench_sweep.dir/bench_sweep.cpp.o" "$build/liblinkstyle.a" "${libraries[@]}"
g++ -o "$out/linkstyle" "$build"/CMakeFiles/linkstyle_cli.dir/apps/linkstyle/*.o "$build/liblinkstyle.a" "${libraries[@]}"
"$out/bench_sweep" --threads 2 --units 2 --stage-units 2 --loop-images 4 --pairs-per-class 60 | tail -3
models=models/shapes
"$out/linkstyle" init "$out/study" --classifier "$models/classifier.pt" --generator "$models/generator.pt" \
  --segmenter "$models/segmenter.pt" --samples-per-class 60 --sweep-samples-per-class 1 > /dev/null
"$out/linkstyle" pairs --study "$out/study" > /dev/null
"$out/linkstyle" fit --study "$out/study" > /dev/null
sed -i 's/^units = \[\]/units = [0, 1]/' "$out/study/study.toml"
"$out/linkstyle" sweep --study "$out/study" | tail -1
"$out/linkstyle" render --world shapes --count 2 --seed 1 -o "$out/real" > /dev/null
"$out/linkstyle" reconstruct --study "$out/study" "$out"/real/*.png | tail -1
echo "kit checked: no stub was reached"
