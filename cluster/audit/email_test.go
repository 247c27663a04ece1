package audit

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/keyward/keyward/fsm"
)

// mailbox is a real SMTP server (go-smtp) on loopback that requires
// STARTTLS and PLAIN authentication and keeps every message.
type mailbox struct {
	addr  string
	roots *x509.CertPool

	mu       sync.Mutex
	messages []*mail.Message
	bodies   []string
	rcpts    [][]string
}

func newMailbox(t *testing.T) *mailbox {
	t.Helper()
	cert, roots := selfSigned(t)
	mb := &mailbox{roots: roots}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{mb: mb}, nil }))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.AllowInsecureAuth = false
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return mb
}

func (mb *mailbox) received() ([]*mail.Message, []string, [][]string) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return append([]*mail.Message(nil), mb.messages...), append([]string(nil), mb.bodies...), append([][]string(nil), mb.rcpts...)
}

type mailSession struct {
	mb     *mailbox
	authed bool
	rcpts  []string
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "keyward" || pass != "relay-password" {
			return errors.New("invalid credentials")
		}
		s.authed = true
		return nil
	}), nil
}

func (s *mailSession) Mail(string, *smtp.MailOptions) error {
	if !s.authed {
		return errors.New("authentication required")
	}
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		return err
	}
	s.mb.mu.Lock()
	s.mb.messages = append(s.mb.messages, msg)
	s.mb.bodies = append(s.mb.bodies, string(body))
	s.mb.rcpts = append(s.mb.rcpts, s.rcpts)
	s.mb.mu.Unlock()
	return nil
}

func (s *mailSession) Reset()        { s.rcpts = nil }
func (s *mailSession) Logout() error { return nil }

// selfSigned returns a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mail test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func mailJobs(t *testing.T, mb *mailbox) func(tn *testNode) []func(context.Context) {
	return func(tn *testNode) []func(context.Context) {
		cfg := testDeliveryConfig(tn.id)
		cfg.SMTP.Addr, cfg.SMTP.From = mb.addr, "keyward@example.com"
		cfg.SMTP.User, cfg.SMTP.Password = "keyward", "relay-password"
		cfg.SMTP.TLS = &tls.Config{RootCAs: mb.roots}
		d, err := NewDispatcher(cfg, tn, tn.sm, testKeyring(t), nil, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		return []func(context.Context){d.RunEmail}
	}
}

// TestEmail_AlertsReachARealSMTPServer mails one message per event, then a
// digest for a burst, through STARTTLS and PLAIN authentication.
func TestEmail_AlertsReachARealSMTPServer(t *testing.T) {
	mb := newMailbox(t)
	tn := startSingle(t, mailJobs(t, mb))
	createVault(t, tn)
	mustApply(t, tn, fsm.CmdSetEmailAlerts, fsm.SetEmailAlertsPayload{VaultID: testVault, Email: fsm.EmailAlerts{
		To: []string{"ops@example.com", "sec@example.com"}, Actions: []string{"temp_machine_blocked"},
	}})
	appendEntries(t, tn, 1, "first block")
	waitFor(t, 10*time.Second, "the first email", func() bool { msgs, _, _ := mb.received(); return len(msgs) == 1 })

	msgs, bodies, rcpts := mb.received()
	subject, _ := new(mimeDecoder).DecodeHeader(msgs[0].Header.Get("Subject"))
	if !strings.Contains(subject, "temp_machine_blocked") || !strings.Contains(subject, machineA) {
		t.Fatalf("subject %q does not name the action and machine", subject)
	}
	if !strings.Contains(bodies[0], "first block 0") || !strings.Contains(bodies[0], "198.51.100.7") {
		t.Fatalf("body does not describe the event:\n%s", bodies[0])
	}
	if strings.Join(rcpts[0], ",") != "ops@example.com,sec@example.com" || msgs[0].Header.Get("From") != "keyward@example.com" {
		t.Fatalf("recipients %v, from %q", rcpts[0], msgs[0].Header.Get("From"))
	}

	appendEntries(t, tn, 12, "burst")
	waitFor(t, 10*time.Second, "the digest", func() bool { msgs, _, _ := mb.received(); return len(msgs) == 2 })
	time.Sleep(200 * time.Millisecond)
	msgs, bodies, _ = mb.received()
	if len(msgs) != 2 || !strings.Contains(bodies[1], "12 audit events") || !strings.Contains(bodies[1], "burst 11") {
		t.Fatalf("%d messages; want one digest of 12 events, got:\n%s", len(msgs), bodies[len(bodies)-1])
	}
	s, err := tn.sm.AlertSettings(testVault)
	if err != nil || s.EmailCursor < vaultEntries(t, tn.sm)[len(vaultEntries(t, tn.sm))-1].ID-1 {
		t.Fatalf("email cursor %d did not follow the log (%v)", s.EmailCursor, err)
	}
}

func TestEmail_RelayWithoutTLSIsRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{mb: &mailbox{}}, nil }))
	srv.Domain = "localhost"
	go srv.Serve(ln)
	defer srv.Close()

	m := newMailer(SMTPConfig{Addr: ln.Addr().String(), From: "keyward@example.com", Timeout: 5 * time.Second})
	err = m.send(context.Background(), message{to: []string{"ops@example.com"}, subject: "x", body: "y"})
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("send to a relay without STARTTLS: %v, want a refusal naming STARTTLS", err)
	}
}

// mimeDecoder decodes encoded-word headers.
type mimeDecoder = mime.WordDecoder
