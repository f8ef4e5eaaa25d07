#!/usr/bin/env bash
# Installs the Debian tools the tests and the demo need, when they are missing.
# Usage: scripts/deps.sh [tool ...]   (default: tshark ip)
# A tool is a command, or one of the names below that is not a command
# (scapy: the Python module, from python3-scapy).
set -euo pipefail
want=("$@")
[ ${#want[@]} -gt 0 ] || want=(tshark ip)
declare -A pkg=([tshark]=tshark [ip]=iproute2 [trafgen]=netsniff-ng [clang]=clang [llvm-strip]=llvm [tcpdump]=tcpdump [dumpcap]=tshark
  [tcpreplay]=tcpreplay [scapy]=python3-scapy
  [promtool]=prometheus [systemd-analyze]=systemd [dpkg-deb]=dpkg
  [chromium]=chromium [dot]=graphviz [bgpd]=frr [vtysh]=frr
  [ospfd]=frr [zebra]=frr [ping]=iputils-ping)
# have TOOL: whether it is installed. python3-scapy installs for Debian's
# python3, which a pyenv or venv python3 first on PATH does not see.
have() {
  case "$1" in
    scapy) /usr/bin/python3 -c 'import scapy' 2>/dev/null || python3 -c 'import scapy' 2>/dev/null ;;
    bgpd|ospfd|zebra) [ -x "/usr/lib/frr/$1" ] ;; # FRR's daemons live off PATH
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}
missing=()
for t in "${want[@]}"; do
  have "$t" || missing+=("${pkg[$t]:-$t}")
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
