package audit

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/fsm"
)

// mailer sends alert email through one relay.
type mailer struct {
	cfg  SMTPConfig
	host string
}

func newMailer(cfg SMTPConfig) *mailer {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		host = cfg.Addr
	}
	return &mailer{cfg: cfg, host: host}
}

// message is one email: recipients, subject and plain-text body.
type message struct {
	to      []string
	subject string
	body    string
}

// send delivers msg in one SMTP session: STARTTLS (required unless
// AllowPlaintext), PLAIN authentication when a user is set, then the data.
func (m *mailer) send(ctx context.Context, msg message) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.cfg.Addr)
	if err != nil {
		return fmt.Errorf("connect to smtp relay %s: %w", m.cfg.Addr, err)
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp greeting from %s: %w", m.cfg.Addr, err)
	}
	defer c.Close()

	if err := m.secure(c); err != nil {
		return err
	}
	if err := c.Mail(m.cfg.From); err != nil {
		return fmt.Errorf("smtp MAIL FROM: %w", err)
	}
	for _, to := range msg.to {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("smtp RCPT TO %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	if _, err := w.Write(m.compose(msg)); err != nil {
		return fmt.Errorf("smtp write message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp end of message: %w", err)
	}
	return c.Quit()
}

// secure starts TLS and authenticates.
func (m *mailer) secure(c *smtp.Client) error {
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if m.cfg.TLS != nil {
			cfg = m.cfg.TLS.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = m.host
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("smtp STARTTLS with %s: %w", m.cfg.Addr, err)
		}
	} else if !m.cfg.AllowPlaintext {
		return fmt.Errorf("smtp relay %s does not offer STARTTLS; email alerts need an encrypted relay", m.cfg.Addr)
	}
	if m.cfg.User == "" {
		return nil
	}
	if _, tlsOn := c.TLSConnectionState(); !tlsOn {
		return errors.New("smtp: refusing to send credentials without TLS")
	}
	if err := c.Auth(smtp.PlainAuth("", m.cfg.User, m.cfg.Password, m.host)); err != nil {
		return fmt.Errorf("smtp authentication as %s: %w", m.cfg.User, err)
	}
	return nil
}

// compose builds the RFC 5322 message. Header values come from our own
// settings (validated addresses) and an encoded subject, so no header can
// be injected; the body is quoted-printable.
func (m *mailer) compose(msg message) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\n", m.cfg.From)
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(msg.to, ", "))
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", oneLine(msg.subject)))
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@keyward>\r\n", uuid.NewString())
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(strings.ReplaceAll(msg.body, "\n", "\r\n")))
	qp.Close()
	b.WriteString("\r\n")
	return b.Bytes()
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

// eventMessage is the email of one entry.
func eventMessage(to []string, e *fsm.AuditEntry) message {
	subject := fmt.Sprintf("[Keyward] %s: %s", e.Severity, e.Action)
	if e.MachineID != "" {
		subject += " (machine " + string(e.MachineID) + ")"
	}
	return message{to: to, subject: subject, body: describeEntry(e)}
}

// digestMessage is one email for many entries.
func digestMessage(to []string, vault fsm.VaultID, entries []fsm.AuditEntry) message {
	var b strings.Builder
	fmt.Fprintf(&b, "%d audit events in vault %s:\n\n", len(entries), vault)
	for i := range entries {
		b.WriteString(describeEntry(&entries[i]))
		b.WriteString("\n")
	}
	return message{to: to, subject: fmt.Sprintf("[Keyward] %d audit events in vault %s", len(entries), vault), body: b.String()}
}

func describeEntry(e *fsm.AuditEntry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s  %s\n", time.UnixMilli(e.Timestamp).UTC().Format(time.RFC3339), e.Severity, e.Action)
	for _, kv := range [][2]string{
		{"vault", string(e.VaultID)}, {"machine", string(e.MachineID)}, {"secret", string(e.SecretID)},
		{"actor", e.ActorKind + " " + e.ActorID}, {"source", e.SourceIP}, {"detail", e.Detail},
	} {
		if strings.TrimSpace(kv[1]) != "" {
			fmt.Fprintf(&b, "  %-8s %s\n", kv[0], kv[1])
		}
	}
	if e.Count > 1 {
		fmt.Fprintf(&b, "  %-8s %d events since %s\n", "count", e.Count, time.UnixMilli(e.FirstAt).UTC().Format(time.RFC3339))
	}
	if len(e.Fields) > 0 {
		fmt.Fprintf(&b, "  %-8s %s\n", "fields", e.Fields)
	}
	fmt.Fprintf(&b, "  %-8s %d (%s)\n", "entry", e.ID, e.UUID)
	return b.String()
}
