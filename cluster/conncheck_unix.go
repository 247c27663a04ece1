//go:build unix

package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// errConnUnusable means a pooled connection was closed by the peer or has
// unexpected unread data.
var errConnUnusable = errors.New("cluster: pooled connection is unusable")

// checkIdleConn peeks at the socket without blocking. An idle forwarding
// connection has nothing to read, so EOF or any pending byte means the peer
// closed it or broke the protocol. The check must come before sending,
// because a request written to a connection that the peer already closed
// fails only on the read. By then the failure looks the same as a leader
// that crashed mid-apply, so the outcome would be reported as unknown.
func checkIdleConn(conn net.Conn) error {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var checkErr error
	err = raw.Read(func(fd uintptr) bool {
		var buf [1]byte
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case n == 0 && rerr == nil:
			checkErr = io.EOF
		case n > 0:
			checkErr = fmt.Errorf("%w: %d unread bytes", errConnUnusable, n)
		case rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK:
			checkErr = nil
		default:
			checkErr = rerr
		}
		return true
	})
	if err != nil {
		return err
	}
	return checkErr
}
