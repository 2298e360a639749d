package halibut

import (
	"net"
	"syscall"
	"unsafe"
)

// sioTCPSetAckFrequency is SIO_TCP_SET_ACK_FREQUENCY from mstcpip.h,
// _WSAIOW(IOC_VENDOR, 23).
const sioTCPSetAckFrequency = 0x98000017

// ackAtOnce makes c acknowledge what it receives at once.
//
// Windows delays ACKs (200 ms by default, every second segment) like Linux does, and a peer
// that leaves Nagle on then waits for them (see tcpack_linux.go). Windows has no TCP_QUICKACK,
// but SIO_TCP_SET_ACK_FREQUENCY (Windows 10 1703 and Server 2016 onwards) sets the delayed-ACK
// frequency of one socket, and it is sticky: a frequency of 1 acknowledges every segment at
// once, set once per connection. Where the ioctl is unknown (older Windows, Wine) it fails and
// the connection keeps the system's setting (the TcpAckFrequency registry value).
func ackAtOnce(c *net.TCPConn) net.Conn {
	raw, err := c.SyscallConn()
	if err != nil {
		return c
	}
	_ = raw.Control(func(fd uintptr) {
		frequency := uint8(1) // TCP_ACK_FREQUENCY_PARAMETERS{TcpDelayedAckFrequency: 1}
		var returned uint32
		_ = syscall.WSAIoctl(syscall.Handle(fd), sioTCPSetAckFrequency, (*byte)(unsafe.Pointer(&frequency)), 1, nil, 0, &returned, nil, 0)
	})
	return c
}
