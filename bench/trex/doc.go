// Package trex holds rloc's stateless TRex profiles (itr.py, etr.py, rtr.py,
// mcast.py), the rlocd configurations they are meant for (rlocd-*.yaml) and
// the bare-metal set-up (README.md).
//
// TRex itself needs DPDK and real NICs, which the project's machines do not
// have. What runs here is trex_test.go: it builds each profile's packets
// with the profile's own scapy function (pcap.py writes them to a pcap),
// replays them with tcpreplay into rlocd running with these configurations
// in lab namespaces, captures what comes out of the other side and checks
// it with gopacket. Run it as root:
//
//	flock /tmp/rloc-heavy.lock go test -race -count=1 ./bench/trex/
//
// Without root, python3-scapy or tcpreplay it skips, or fails when the CI
// environment variable is set (scripts/deps.sh installs them).
package trex
