#!/usr/bin/env bash
# ci/setup.sh: prepare a Debian 12 machine (as root) to build and test vswitch, then build.
#
# Idempotent and quick when everything is there: apt runs only when `dpkg-query` reports a
# package missing, and cargo only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
source ci/lib.sh

# Every package the build and the tests use:
#   build:  a C toolchain for the cc crate, pkg-config, clang + libclang for bindgen,
#           libdpdk-dev (headers and libraries; it depends on every DPDK driver package,
#           mempool-ring included), ca-certificates for cargo to fetch crates.
#   tests:  dpdk (runtime), dpdk-dev (dpdk-testpmd), iproute2 (ip, ss), iperf3, ethtool,
#           iputils-ping, procps (ps), python3 (JSON checks, pcap files), python3-scapy
#           (encapsulation peers), tcpdump (debugging captures), coreutils (timeout, stdbuf).
#   gRPC client tests (ci/tests/13-15, ci/grpc/*.py; code generated from proto/ at test time):
#           python3-grpcio (the client), python3-grpc-tools, python3-yaml; protobuf-compiler +
#           protobuf-compiler-grpc (protoc 3.21 + grpc_python_plugin make the stubs: Debian 12's
#           python3-grpc-tools 1.14 bundles libprotoc 3.5.1, which rejects proto3 `optional`),
#           grpc-proto (grpc.health.v1 and reflection protos), openssl (the TLS test's CA).
#   metrics test: python3-prometheus-client (the reference parser of the text format).
#   ACL tests (ci/tests/48): python3-numpy (the linear first-match reference over 100,000
#           packets), curl (HTTP through a policy).
#   deploy test (ci/tests/16): systemd (systemd-analyze verify / capability / security on
#           the unit file, offline: systemd need not be running; also the units it names,
#           e.g. dev-hugepages.mount), libc6-dev (<bits/socket.h>: the address families).
#   CNI tests (ci/tests/56-57): containernetworking-plugins (host-local, the IPAM plugin the
#           plugin delegates to), podman + runc (a real runtime driving vswitch-cni through
#           its CNI backend), busybox-static (the containers' root file system, imported
#           offline).
PACKAGES=(
    build-essential pkg-config clang libclang-dev libdpdk-dev ca-certificates
    dpdk dpdk-dev iproute2 iperf3 ethtool iputils-ping procps python3 python3-scapy
    tcpdump coreutils
    python3-grpcio python3-grpc-tools python3-yaml protobuf-compiler protobuf-compiler-grpc
    grpc-proto openssl python3-prometheus-client
    systemd libc6-dev python3-numpy curl
    containernetworking-plugins podman runc busybox-static
)

if ((EUID != 0)); then
    echo "ci/setup.sh: run as root (sudo bash ci/setup.sh)" >&2
    exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
    echo "ci/setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # iperf3 asks whether to start a system daemon; the answer is no.
    echo "iperf3 iperf3/start_daemon boolean false" | debconf-set-selections
    apt-get install -y --no-install-recommends "${missing[@]}"
else
    echo "ci/setup.sh: all ${#PACKAGES[@]} packages present"
fi

if ! vs_find_cargo; then
    cat >&2 <<'MSG'
ci/setup.sh: cargo not found. Install Rust (>= 1.85) with rustup, e.g.
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y
then run this script again.
MSG
    exit 1
fi
echo "ci/setup.sh: $(cargo --version)"
# The oldest Rust that builds this tree (with its Cargo.lock) is Cargo.toml's rust-version.
rust_min=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml)
rust_have=$(cargo --version | awk '{print $2}')
if ! printf '%s\n%s\n' "$rust_min" "$rust_have" | sort -V -C; then
    echo "ci/setup.sh: Rust $rust_have is older than $rust_min (Cargo.toml's rust-version): rustup update" >&2
    exit 1
fi

cargo build --release --workspace
# The memif example peer that ci/tests/66-memif-interop.sh runs against testpmd.
cargo build --release -p memif --example memif_peer
for bin in vswitchd vsctl; do
    [[ -x "$VS_BIN_DIR/$bin" ]] || {
        echo "ci/setup.sh: build finished but $VS_BIN_DIR/$bin is missing" >&2
        exit 1
    }
done
echo "ci/setup.sh: ready ($VS_BIN_DIR/vswitchd, $VS_BIN_DIR/vsctl)"
