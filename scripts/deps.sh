#!/usr/bin/env bash
# Installs the Debian tools the tests and the demo need, when they are missing.
# Usage: scripts/deps.sh [tool ...]   (default: tshark ip)
set -euo pipefail
want=("$@")
[ ${#want[@]} -gt 0 ] || want=(tshark ip)
declare -A pkg=([tshark]=tshark [ip]=iproute2 [trafgen]=netsniff-ng [clang]=clang [llvm-strip]=llvm [tcpdump]=tcpdump [dumpcap]=tshark [promtool]=prometheus [systemd-analyze]=systemd [dpkg-deb]=dpkg)
missing=()
for t in "${want[@]}"; do
  command -v "$t" >/dev/null 2>&1 || missing+=("${pkg[$t]:-$t}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deps.sh: missing ${missing[*]}; run as root or install them" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
