package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Channel bytes. The first byte that a dialer writes on a connection (inside
// TLS when TLS is on) selects the service behind the shared port. Neither
// value is 0x16, the first byte of a TLS handshake, so a TLS client that
// reaches a plain-TCP node is rejected at once.
const (
	channelRaft    byte = 'R'
	channelForward byte = 'F'
)

// maxPendingHandshakes bounds the connections that are accepted but have not
// yet sent their channel byte, so a flood of idle connections cannot grow
// goroutines without limit.
const maxPendingHandshakes = 256

// addr is a net.Addr for an advertised host:port, which may be a host name
// that net.TCPAddr cannot hold.
type addr string

func (a addr) Network() string { return "tcp" }
func (a addr) String() string  { return string(a) }

// tlsPair holds the server and client sides derived from Config.TLS.
type tlsPair struct {
	server *tls.Config
	client *tls.Config
}

// newTLSPair derives both sides of mutual TLS from one node configuration:
// the server requires and verifies a client certificate, and the client
// verifies the server against RootCAs. Session tickets are disabled so that
// an idle connection carries no unread post-handshake data, which the
// forwarding pool's liveness check relies on.
func newTLSPair(base *tls.Config) *tlsPair {
	if base == nil {
		return nil
	}
	server := base.Clone()
	if server.ClientCAs == nil {
		server.ClientCAs = base.RootCAs
	}
	server.ClientAuth = tls.RequireAndVerifyClientCert
	server.SessionTicketsDisabled = true
	if server.MinVersion < tls.VersionTLS12 {
		server.MinVersion = tls.VersionTLS12
	}

	client := base.Clone()
	client.SessionTicketsDisabled = true
	if client.MinVersion < tls.VersionTLS12 {
		client.MinVersion = tls.VersionTLS12
	}
	return &tlsPair{server: server, client: client}
}

// clientFor returns the client config for a dial to target, verifying the
// dialled host unless a fixed ServerName is configured.
func (p *tlsPair) clientFor(target string) *tls.Config {
	if p.client.ServerName != "" {
		return p.client
	}
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		host = target
	}
	cfg := p.client.Clone()
	cfg.ServerName = host
	return cfg
}

// dialer opens connections to a peer's shared port on one channel.
type dialer struct {
	tls     *tlsPair
	timeout time.Duration
}

// dial connects, completes the TLS handshake when configured and writes the
// channel byte, all within timeout.
func (d *dialer) dial(ctx context.Context, target string, channel byte, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 || timeout > d.timeout {
		timeout = d.timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	nd := net.Dialer{}
	conn, err := nd.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	if d.tls != nil {
		tc := tls.Client(conn, d.tls.clientFor(target))
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("tls handshake with %s: %w", target, err)
		}
		conn = tc
	}
	deadline, _ := ctx.Deadline()
	conn.SetWriteDeadline(deadline)
	if _, err := conn.Write([]byte{channel}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("write channel byte to %s: %w", target, err)
	}
	conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

// muxListener accepts connections on the shared port, completes TLS, reads
// the channel byte and hands each connection to its service: Raft
// connections through the raftLayer's Accept, forwarding connections to a
// handler in a new goroutine. It tracks every connection it handed out so
// Close can end the goroutines that read from them.
type muxListener struct {
	ln               net.Listener
	tls              *tlsPair
	handshakeTimeout time.Duration
	onForward        func(net.Conn)
	logger           *slog.Logger

	raftConns chan net.Conn
	pending   chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu sync.Mutex
	// conns are the classified connections still open.
	conns map[net.Conn]struct{}
	// handshaking are the raw connections still in handshake.
	handshaking map[net.Conn]struct{}
}

func newMuxListener(ln net.Listener, tp *tlsPair, handshakeTimeout time.Duration,
	onForward func(net.Conn), logger *slog.Logger) *muxListener {
	return &muxListener{
		ln:               ln,
		tls:              tp,
		handshakeTimeout: handshakeTimeout,
		onForward:        onForward,
		logger:           logger,
		raftConns:        make(chan net.Conn),
		pending:          make(chan struct{}, maxPendingHandshakes),
		closed:           make(chan struct{}),
		conns:            make(map[net.Conn]struct{}),
		handshaking:      make(map[net.Conn]struct{}),
	}
}

func (m *muxListener) start() {
	m.wg.Add(1)
	go m.acceptLoop()
}

func (m *muxListener) acceptLoop() {
	defer m.wg.Done()
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			if m.isClosed() {
				return
			}
			m.logger.Warn("accept failed", keyErr, err)
			select {
			case <-m.closed:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		select {
		case m.pending <- struct{}{}:
		default:
			m.logger.Warn("too many pending cluster connections, closing one", keyAddr, conn.RemoteAddr().String())
			conn.Close()
			continue
		}
		m.mu.Lock()
		if m.isClosed() {
			m.mu.Unlock()
			conn.Close()
			return
		}
		m.handshaking[conn] = struct{}{}
		m.mu.Unlock()
		m.wg.Add(1)
		go m.classify(conn)
	}
}

// classify completes the handshake and reads the channel byte under one
// deadline, then dispatches the connection.
func (m *muxListener) classify(raw net.Conn) {
	defer m.wg.Done()
	conn, channel, err := m.handshake(raw)
	<-m.pending
	m.mu.Lock()
	delete(m.handshaking, raw)
	m.mu.Unlock()
	if err != nil {
		m.logger.Debug("rejected cluster connection", keyAddr, raw.RemoteAddr().String(), keyErr, err)
		raw.Close()
		return
	}
	tracked := m.track(conn)
	if tracked == nil {
		return
	}
	switch channel {
	case channelRaft:
		select {
		case m.raftConns <- tracked:
		case <-m.closed:
			tracked.Close()
		}
	case channelForward:
		m.onForward(tracked)
		tracked.Close()
	}
}

func (m *muxListener) handshake(raw net.Conn) (net.Conn, byte, error) {
	raw.SetDeadline(time.Now().Add(m.handshakeTimeout))
	conn := raw
	if m.tls != nil {
		tc := tls.Server(raw, m.tls.server)
		if err := tc.Handshake(); err != nil {
			return nil, 0, fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
	}
	var b [1]byte
	if _, err := conn.Read(b[:]); err != nil {
		return nil, 0, fmt.Errorf("read channel byte: %w", err)
	}
	if b[0] != channelRaft && b[0] != channelForward {
		return nil, 0, fmt.Errorf("%w: unknown channel byte 0x%02x", ErrProtocol, b[0])
	}
	raw.SetDeadline(time.Time{})
	return conn, b[0], nil
}

// track registers conn and returns a wrapper that unregisters on Close, or
// nil when the listener is already closed.
func (m *muxListener) track(conn net.Conn) net.Conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.isClosed() {
		conn.Close()
		return nil
	}
	tc := &trackedConn{Conn: conn, owner: m}
	m.conns[tc] = struct{}{}
	return tc
}

func (m *muxListener) untrack(c net.Conn) {
	m.mu.Lock()
	delete(m.conns, c)
	m.mu.Unlock()
}

func (m *muxListener) isClosed() bool {
	select {
	case <-m.closed:
		return true
	default:
		return false
	}
}

// close stops accepting, closes every connection handed out and waits for
// the goroutines of this listener.
func (m *muxListener) close() error {
	var err error
	m.closeOnce.Do(func() {
		m.mu.Lock()
		close(m.closed)
		open := make([]net.Conn, 0, len(m.conns)+len(m.handshaking))
		for c := range m.conns {
			open = append(open, c)
		}
		for c := range m.handshaking {
			open = append(open, c)
		}
		m.mu.Unlock()

		err = m.ln.Close()
		for _, c := range open {
			c.Close()
		}
		m.wg.Wait()
	})
	return err
}

type trackedConn struct {
	net.Conn
	owner *muxListener
	once  sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.owner.untrack(c) })
	return err
}

// raftLayer is the raft.StreamLayer over the shared port: Accept yields only
// Raft connections and Dial opens Raft connections.
type raftLayer struct {
	mux       *muxListener
	dialer    *dialer
	advertise addr
	closed    chan struct{}
	closeOnce sync.Once
}

var _ raft.StreamLayer = (*raftLayer)(nil)

// errLayerClosed is returned by Accept after Close.
var errLayerClosed = errors.New("cluster: raft stream layer closed")

func (l *raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.mux.raftConns:
		return c, nil
	case <-l.closed:
		return nil, errLayerClosed
	case <-l.mux.closed:
		return nil, errLayerClosed
	}
}

// Close stops Accept. The shared listener is closed by the node, because the
// forwarding channel uses it too.
func (l *raftLayer) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

// Addr returns the advertised address, which Raft sends to peers as this
// node's address.
func (l *raftLayer) Addr() net.Addr { return l.advertise }

func (l *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.dialer.dial(context.Background(), string(address), channelRaft, timeout)
}
