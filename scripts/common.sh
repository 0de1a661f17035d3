# shellcheck shell=bash
# Shared settings for ioguard's scripts. Source it; do not run it.
# shellcheck disable=SC2034  # the settings are for the scripts that source it
set -euo pipefail

IOGUARD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Downloads and ccache survive a fresh checkout; build trees do not.
IOGUARD_CACHE=${IOGUARD_CACHE:-$HOME/.cache/ioguard}
IOGUARD_BUILD=${IOGUARD_BUILD:-$IOGUARD_ROOT/build}

# QEMU 10.0, from Debian trixie's source package (pinned).
QEMU_DEB_VERSION=1:10.0.13+ds-0+deb13u1
QEMU_DSC_SHA256=a426c892e5369058c3423816c8625bc8010bb5a58ece57261f62b64ee4d765ad
QEMU_SRC=$IOGUARD_BUILD/qemu-src
QEMU_BUILD=$IOGUARD_BUILD/qemu
QEMU_BIN=$QEMU_BUILD/qemu-system-x86_64

# Guest kernel: Debian's linux-image-amd64 from bookworm-backports (6.12).
GUEST_DIR=$IOGUARD_BUILD/guest

# scripts/setup-host once for a whole run: scripts/test and scripts/demo run
# build-qemu and build-guest, which also run it when run alone.
ensure_host_packages() {
  [ -n "${IOGUARD_HOST_READY:-}" ] && return
  "$IOGUARD_ROOT/scripts/setup-host"
  export IOGUARD_HOST_READY=1
}

log() { printf '\033[1m[ioguard]\033[0m %s\n' "$*" >&2; }
die() { printf '[ioguard] error: %s\n' "$*" >&2; exit 1; }
