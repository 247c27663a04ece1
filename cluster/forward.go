package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// Pool and connection limits of the forwarding channel.
const (
	// forwardMaxIdle is the number of idle connections kept per leader.
	// Each request holds a connection until its reply arrives, so a
	// follower with N writes in flight uses N connections. Keeping up to
	// 256 idle spares a dial, and with TLS a handshake, per write at up to
	// that many concurrent writes. Each idle connection costs a socket and
	// a waiting goroutine on the leader.
	forwardMaxIdle = 256
	// forwardIdleLifetime is how long the client keeps an idle connection.
	// It is shorter than forwardServerIdle so the client, not the server,
	// normally ends an idle connection.
	forwardIdleLifetime = 30 * time.Second
	// forwardServerIdle is how long the server waits for the next request.
	forwardServerIdle = 2 * time.Minute
	// forwardWriteTimeout bounds writing one response.
	forwardWriteTimeout = 10 * time.Second
)

// errNotSent marks a forwarding failure that happened before the request
// was fully written, so the leader cannot have proposed it.
type errNotSent struct{ err error }

func (e *errNotSent) Error() string { return "request not sent: " + e.err.Error() }
func (e *errNotSent) Unwrap() error { return e.err }

// forwardClient sends requests to a leader's forwarding channel over pooled
// connections, one request at a time per connection.
type forwardClient struct {
	dialer *dialer

	mu sync.Mutex
	// idle holds idle connections per target address.
	idle   map[string][]idleConn
	closed bool
}

type idleConn struct {
	conn  net.Conn
	since time.Time
}

func newForwardClient(d *dialer) *forwardClient {
	return &forwardClient{dialer: d, idle: make(map[string][]idleConn)}
}

// get returns a pooled connection that passes the liveness check, or dials
// a new one.
func (c *forwardClient) get(ctx context.Context, target string) (net.Conn, error) {
	for {
		conn, ok := c.popIdle(target)
		if !ok {
			break
		}
		if err := checkIdleConn(conn); err != nil {
			conn.Close()
			continue
		}
		return conn, nil
	}
	timeout := c.dialer.timeout
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < timeout {
		timeout = time.Until(deadline)
	}
	return c.dialer.dial(ctx, target, channelForward, timeout)
}

func (c *forwardClient) popIdle(target string) (net.Conn, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.idle[target]
	for len(list) > 0 {
		last := list[len(list)-1]
		list = list[:len(list)-1]
		c.idle[target] = list
		if time.Since(last.since) < forwardIdleLifetime {
			return last.conn, true
		}
		last.conn.Close()
	}
	return nil, false
}

func (c *forwardClient) put(target string, conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.idle[target]) >= forwardMaxIdle {
		conn.Close()
		return
	}
	c.idle[target] = append(c.idle[target], idleConn{conn: conn, since: time.Now()})
}

func (c *forwardClient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for target, list := range c.idle {
		for _, ic := range list {
			ic.conn.Close()
		}
		delete(c.idle, target)
	}
}

// roundTrip sends req to target and reads the response. A failure before the
// request was fully written returns *errNotSent. A failure after that wraps
// ErrIndeterminate, because the leader may have proposed the command.
func (c *forwardClient) roundTrip(ctx context.Context, target string, req *request) (*response, error) {
	conn, err := c.get(ctx, target)
	if err != nil {
		return nil, &errNotSent{err: err}
	}
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if err := writeFrame(conn, req.encode()); err != nil {
		conn.Close()
		return nil, &errNotSent{err: fmt.Errorf("write to %s: %w", target, err)}
	}
	body, err := readFrame(conn)
	if err != nil {
		conn.Close()
		return nil, indeterminate(ctx, fmt.Errorf("read reply from %s: %w", target, err))
	}
	res, err := decodeResponse(body)
	if err != nil {
		conn.Close()
		return nil, indeterminate(ctx, err)
	}
	if !stop() {
		// The context fired while the reply arrived; the deadline on the
		// connection is spoiled, so do not reuse it.
		conn.Close()
		return res, nil
	}
	conn.SetDeadline(time.Time{})
	c.put(target, conn)
	return res, nil
}

// indeterminate wraps err in ErrIndeterminate, and also in the context's
// error when the context ended, so callers can match either. The socket
// deadline equals the context's, so a socket timeout can fire a moment
// before the context reports it; that counts as the context's deadline.
func indeterminate(ctx context.Context, err error) error {
	ctxErr := ctx.Err()
	if ctxErr == nil && errors.Is(err, os.ErrDeadlineExceeded) {
		if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline.Add(-time.Millisecond)) {
			ctxErr = context.DeadlineExceeded
		}
	}
	if ctxErr != nil {
		return fmt.Errorf("%w: %w: %v", ErrIndeterminate, ctxErr, err)
	}
	return fmt.Errorf("%w: %v", ErrIndeterminate, err)
}

// forwardServer reads requests from one accepted forwarding connection until
// it closes or stays idle past forwardServerIdle.
type forwardServer struct {
	handle func(*request) *response
	logger *slog.Logger
}

func (s *forwardServer) serve(conn net.Conn) {
	peer := conn.RemoteAddr().String()
	for {
		conn.SetReadDeadline(time.Now().Add(forwardServerIdle))
		body, err := readFrame(conn)
		if err != nil {
			s.logReadError(peer, err)
			return
		}
		req, err := decodeRequest(body)
		var res *response
		if err != nil {
			res = &response{status: statusBadRequest, payload: []byte(err.Error())}
		} else {
			res = s.handle(req)
		}
		conn.SetWriteDeadline(time.Now().Add(forwardWriteTimeout))
		if err := writeFrame(conn, res.encode()); err != nil {
			s.logger.Debug("write forwarding reply failed", keyAddr, peer, keyErr, err)
			return
		}
		if res.status == statusBadRequest {
			return
		}
	}
}

func (s *forwardServer) logReadError(peer string, err error) {
	if errors.Is(err, ErrFrameTooLarge) {
		s.logger.Warn("closed forwarding connection", keyAddr, peer, keyErr, err)
		return
	}
	s.logger.Debug("forwarding connection ended", keyAddr, peer, keyErr, err)
}
