package netns

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtoolValue is struct ethtool_value (linux/ethtool.h): a command and one
// 32-bit argument.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData is struct ifreq with the ifr_data pointer member.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// SetTxChecksum turns transmit checksum offload of ifname on or off
// (what `ethtool -K ifname tx on|off` does, through the SIOCETHTOOL ioctl).
//
// A host whose veth offloads UDP/TCP checksums sends packets whose checksum
// field holds only the pseudo-header sum; the kernel trusts that on a veth
// peer, but a packet that crosses an AF_XDP socket loses the "checksum
// partial" mark and the receiving host drops it. Hosts sending through a
// userspace data path therefore need offload off, as on a real wire.
func (n *NS) SetTxChecksum(ifname string, on bool) error {
	if len(ifname) > unix.IFNAMSIZ-1 {
		return fmt.Errorf("netns: interface name %q too long", ifname)
	}
	return n.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("netns: ethtool socket: %w", err)
		}
		defer unix.Close(fd)
		v := ethtoolValue{cmd: unix.ETHTOOL_STXCSUM}
		if on {
			v.data = 1
		}
		var ifr ifreqData
		copy(ifr.name[:], ifname)
		ifr.data = unsafe.Pointer(&v)
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); e != 0 {
			return fmt.Errorf("netns: tx checksum offload on %s in %s: %w", ifname, n.Name, e)
		}
		return nil
	})
}
