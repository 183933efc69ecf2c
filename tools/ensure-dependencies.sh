#!/usr/bin/env bash
# Installs the Debian packages linkstyle needs, if any is missing. As root it runs apt-get; as
# another user it prints the one command to run and fails. Fast (dpkg-query only) when all are there.
set -euo pipefail

packages=(
  cmake ninja-build g++ ccache
  libtorch-dev            # tensors, autograd, TorchScript (libtorch 1.13)
  libgloo-dev             # headers of c10d's Gloo process group (many-process jobs)
  libopenblas0-openmp     # fast BLAS for libtorch; without it matrix products are ~60x slower
  libjemalloc-dev         # the programs' allocator: keeps freed pages for the next batch
  libopencv-dev           # images: decode, resize, draw, encode
  libcli11-dev            # command line parsing
  nlohmann-json3-dev      # JSON manifests and reports
  libfmt-dev              # formatting
  libsqlite3-dev          # results database
  libtomlplusplus-dev     # study.toml
  zlib1g-dev              # reads the gzip-compressed IDX files of Fashion-MNIST
  dataset-fashion-mnist   # the built-in "fashion" world (real images)
  googletest libgtest-dev # tests
  python3-numpy python3-sklearn   # tests and benchmark check our files and fits against them
  python3-torch python3-torchvision python3-pil   # export tools and their tests
  libcpp-httplib-dev      # the explorer's HTTP server (linkstyle serve)
  chromium                # the browser of the end-to-end tests (tests/browser)
  clang libclang-rt-dev   # the fuzz targets (fuzz/, libFuzzer): built and replayed by make test
)

missing=()
for package in "${packages[@]}"; do
  [[ "$package" == \#* ]] && continue
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done
# Node.js and npm run the browser tests; any install of them will do (Debian's nodejs and npm
# packages when there is none).
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

# The browser tests' npm packages (playwright-core, pinned by tests/browser/package-lock.json),
# installed into tests/browser/node_modules when missing or out of date.
install_browser_test_packages() {
  local folder
  folder="$(cd "$(dirname "$0")/../tests/browser" && pwd)"
  if ! cmp -s "$folder/package-lock.json" "$folder/node_modules/.linkstyle-package-lock.json"; then
    echo "installing the browser tests' npm packages into $folder/node_modules" >&2
    (cd "$folder" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp "$folder/package-lock.json" "$folder/node_modules/.linkstyle-package-lock.json"
  fi
}

if [[ ${#missing[@]} -eq 0 ]]; then
  install_browser_test_packages
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "linkstyle needs these Debian packages; run as root:" >&2
  echo "  apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_browser_test_packages
