package xsk

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ethtoolChannels is struct ethtool_channels (linux/ethtool.h).
type ethtoolChannels struct {
	cmd                                         uint32
	maxRx, maxTx, maxOther, maxCombined         uint32
	rxCount, txCount, otherCount, combinedCount uint32
}

// ethtoolGChannels is ETHTOOL_GCHANNELS.
const ethtoolGChannels = 0x3c

// ifreqData is struct ifreq with its union holding a pointer (ifr_data).
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// RxQueues returns the number of receive queues of interface ifname in the
// calling thread's network namespace that the NIC spreads traffic over: the
// rx and combined channels its driver reports (what `ethtool -l` shows), with
// channels true. For a driver without channel support (virtual devices:
// bridges, bonds, VLANs) it returns the receive queues the kernel set up for
// the device (IFLA_NUM_RX_QUEUES), with channels false: an upper bound, not
// what traffic uses. A steering program redirects only the queues that have
// a socket: traffic on any other queue goes to the kernel, past the fast
// path.
func RxQueues(ifname string) (n int, channels bool, err error) {
	if len(ifname) >= unix.IFNAMSIZ {
		return 0, false, fmt.Errorf("xsk: interface name %q longer than %d bytes", ifname, unix.IFNAMSIZ-1)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, false, fmt.Errorf("xsk: rx queues of %s: %w", ifname, err)
	}
	defer unix.Close(fd)
	ch := ethtoolChannels{cmd: ethtoolGChannels}
	var ifr ifreqData
	copy(ifr.name[:], ifname)
	ifr.data = unsafe.Pointer(&ch)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	switch {
	case errno == 0 && ch.rxCount+ch.combinedCount > 0:
		return int(ch.rxCount + ch.combinedCount), true, nil
	case errno == unix.ENODEV:
		return 0, false, fmt.Errorf("xsk: rx queues of %s: no such interface", ifname)
	case errno != 0 && errno != unix.EOPNOTSUPP:
		return 0, false, fmt.Errorf("xsk: rx queues of %s: ETHTOOL_GCHANNELS: %w", ifname, errno)
	}
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return 0, false, fmt.Errorf("xsk: rx queues of %s: no such interface", ifname)
		}
		return 0, false, fmt.Errorf("xsk: rx queues of %s: %w", ifname, err)
	}
	return max(l.Attrs().NumRxQueues, 1), false, nil
}
