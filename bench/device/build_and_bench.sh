#!/usr/bin/env bash
# On a CUDA machine with PyTorch: builds linkstyle's library, its command line (BUILD/linkstyle)
# and bench_sweep against PyTorch's libtorch (CUDA) and a kit made by bench/device/make_kit.sh,
# then runs bench_sweep on the GPU.
# Usage, from the repository root: bench/device/build_and_bench.sh <kit> <build folder> [bench_sweep options]
# PyTorch's libtorch.so exports its own copy of parts of the C++ library (std::filesystem among
# them); libstdc++ is linked first so that linkstyle's calls resolve to the system's.
set -euo pipefail
kit=$(realpath "$1"); build=$2; shift 2
torch_dir=${TORCH_DIR:-$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')}
mkdir -p "$build/obj" "$build/lib"
for module in core imgproc video imgcodecs; do xz -dc "$kit/lib/libopencv_$module.a.xz" > "$build/lib/libopencv_$module.a"; done
flags=(-std=gnu++17 -O3 -DNDEBUG -D_GLIBCXX_USE_CXX11_ABI=1 -DFMT_HEADER_ONLY -DUSE_C10D_GLOO -Iinclude -Isrc
       -isystem "$torch_dir/include" -isystem "$torch_dir/include/torch/csrc/api/include"
       -isystem "$kit/include" -isystem "$kit/include/opencv4" "-DLINKSTYLE_SOURCE_DIR=\"$PWD\"")
start=$(date +%s)
ls src/*.cpp src/*/*.cpp bench/bench_sweep.cpp apps/linkstyle/*.cpp |
  xargs -P "$(nproc)" -I{} sh -c 'g++ "$@" -c {} -o "'"$build"'/obj/$(echo {} | tr / _).o"' _ "${flags[@]}"
gcc -c "$kit/stubs.S" -o "$build/obj/stubs.o"
libraries=(-Wl,--start-group "$build"/lib/libopencv_{imgcodecs,video,imgproc,core}.a -Wl,--end-group
  -Wl,--no-as-needed -lstdc++ -L"$torch_dir/lib" -ltorch -ltorch_cuda -ltorch_cpu -lc10_cuda -lc10 -Wl,--as-needed
  /lib/x86_64-linux-gnu/libsqlite3.so.0 "$kit/lib/libtbb.so.12" -lpng16 -ljpeg -lz -lpthread -ldl
  -Wl,-rpath,"$torch_dir/lib:$kit/lib")
library_objects=$(ls "$build"/obj/src_*.o "$build/obj/stubs.o")
g++ -o "$build/bench_sweep" $library_objects "$build/obj/bench_bench_sweep.cpp.o" "${libraries[@]}"
g++ -o "$build/linkstyle" $library_objects "$build"/obj/apps_linkstyle_*.o "${libraries[@]}"
echo "built $build/linkstyle and $build/bench_sweep in $(( $(date +%s) - start )) s"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$build/bench_sweep" --device cuda "$@"
