#!/usr/bin/env bash
# Create one virtual environment per peer library under .peers/<name>, for side-by-side benchmarks.
#
# Usage: bash benchmarks/peers/setup.sh reservoirpy [rectipy snntorch brian2 ...]
#        bash benchmarks/peers/setup.sh all
#
# Each venv gets torch==2.13.0 (the CPU build) first, then the peer, with torch pinned by a
# constraints file so that no peer dependency can replace it with a CUDA build. A venv whose
# import check already passes is left as it is, so the script can be run again at no cost.
# Peers are never installed into the project's own .venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/.peers}"
PYTHON="${PYTHON:-python3}"
TORCH_PIN="torch==2.13.0"
KNOWN="reservoirpy rectipy snntorch norse brian2 nest"

usage() {
    echo "usage: bash benchmarks/peers/setup.sh PEER [PEER ...]   (PEER in: $KNOWN, or 'all')" >&2
    exit 2
}

# The pip arguments that install a peer, and a Python snippet that proves the venv works.
peer_packages() {
    case "$1" in
        reservoirpy) echo "reservoirpy==0.4.2 hyperopt==0.2.7 setuptools<81" ;;
        rectipy) echo "rectipy==0.12.2 pyrates==1.2.3" ;;
        snntorch) echo "snntorch==1.0.0 numpy" ;;
        norse) echo "nir nirtorch numpy" ;;  # norse itself: peer_nodeps
        brian2) echo "brian2 numpy<2.4 cython" ;;
        nest) echo "nest-simulator==3.10.0 numpy" ;;
        *) return 1 ;;
    esac
}

peer_check() {
    case "$1" in
        reservoirpy) echo "import reservoirpy, hyperopt, torch; assert reservoirpy.__version__ == '0.4.2'" ;;
        rectipy) echo "import rectipy, pyrates, torch" ;;
        snntorch) echo "import numpy, snntorch, torch" ;;
        norse) echo "import numpy, norse, torch; assert norse.__version__.startswith('1.1')" ;;
        brian2) echo "import brian2, Cython, torch" ;;
        nest) echo "import nest, torch; assert nest.__version__.startswith('3.10')" ;;
    esac
}

# A package installed without its dependencies: norse 1.1 lists torchvision (for its example
# tasks only), which has no build for this torch; the rest of norse needs what peer_packages
# installs.
peer_nodeps() {
    case "$1" in
        norse) echo "norse==1.1.0" ;;
        *) echo "" ;;
    esac
}

setup_peer() {
    local name="$1" venv="$PEERS_DIR/$1" pkgs check
    pkgs="$(peer_packages "$name")" || { echo "unknown peer '$name' (known: $KNOWN)" >&2; exit 2; }
    check="$(peer_check "$name"); assert torch.version.cuda is None, 'a CUDA torch was installed'"
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
        echo "[$name] $venv already works; skipped"
        return 0
    fi
    echo "[$name] creating $venv"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "$TORCH_PIN"
    echo "$TORCH_PIN" >"$venv/constraints.txt"
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    "$venv/bin/python" -m pip install --quiet -c "$venv/constraints.txt" $pkgs
    nodeps="$(peer_nodeps "$name")"
    if [ -n "$nodeps" ]; then
        # shellcheck disable=SC2086
        "$venv/bin/python" -m pip install --quiet --no-deps $nodeps
    fi
    "$venv/bin/python" -c "$check"
    echo "[$name] ready: $venv/bin/python"
}

[ "$#" -ge 1 ] || usage
mkdir -p "$PEERS_DIR"
if [ "$1" = "all" ]; then
    set -- $KNOWN
fi
for peer in "$@"; do
    setup_peer "$peer"
done
