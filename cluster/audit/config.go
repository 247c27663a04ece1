package audit

import (
	"crypto/tls"
	"fmt"
	"time"
)

// RecorderConfig configures a Recorder. Start from DefaultRecorderConfig.
type RecorderConfig struct {
	// NodeID is written into every entry as the recording node. Required.
	NodeID string
	// QueueSize bounds the events waiting to be coalesced. A full queue
	// drops new events and counts them. Default 65,536.
	QueueSize int
	// Window is how long repeats of one event are folded into one entry
	// after the first is written. Default 60 s.
	Window time.Duration
	// FlushInterval is the longest an entry waits before its batch is
	// proposed. Default 200 ms.
	FlushInterval time.Duration
	// BatchSize is the number of entries that triggers a proposal before
	// FlushInterval; at most fsm.MaxAuditBatch. Default 500.
	BatchSize int
	// MaxKeys bounds the open coalescing windows. Past it, new keys are
	// written without coalescing. Default 100,000.
	MaxKeys int
	// MaxPending bounds entries waiting for Raft while no leader takes
	// them; past it the oldest are dropped and counted. Default 50,000.
	MaxPending int
	// ApplyTimeout bounds one proposal. Default 10 s.
	ApplyTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultRecorderConfig returns the documented defaults.
func DefaultRecorderConfig() RecorderConfig {
	return RecorderConfig{
		QueueSize:     65_536,
		Window:        60 * time.Second,
		FlushInterval: 200 * time.Millisecond,
		BatchSize:     500,
		MaxKeys:       100_000,
		MaxPending:    50_000,
		ApplyTimeout:  10 * time.Second,
		Now:           time.Now,
	}
}

// Validate checks every field and names the first invalid one.
func (c RecorderConfig) Validate() error {
	switch {
	case c.NodeID == "":
		return invalid("node-id", "missing")
	case c.QueueSize < 1:
		return invalid("audit-queue-size", "%d is below 1", c.QueueSize)
	case c.Window < time.Second:
		return invalid("audit-coalesce-window", "%s is below 1s", c.Window)
	case c.FlushInterval <= 0:
		return invalid("audit-flush-interval", "%s is not positive", c.FlushInterval)
	case c.BatchSize < 1 || c.BatchSize > 1000:
		return invalid("audit-batch-size", "%d is not between 1 and 1000", c.BatchSize)
	case c.MaxKeys < 1 || c.MaxPending < c.BatchSize:
		return invalid("audit-max-keys", "max keys %d and max pending %d must be positive and at least the batch size", c.MaxKeys, c.MaxPending)
	case c.ApplyTimeout <= 0 || c.Now == nil:
		return invalid("apply-timeout", "timeout %s must be positive and the clock set", c.ApplyTimeout)
	}
	return nil
}

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
}

// DeliveryConfig configures a Dispatcher. Start from
// DefaultDeliveryConfig.
type DeliveryConfig struct {
	// NodeID names the proposing node in commands. Required.
	NodeID string
	// PollInterval is how often the leader looks for new entries when no
	// commit woke it. Default 1 s.
	PollInterval time.Duration

	// MaxAttempts bounds the HTTP attempts per event. Default 6.
	MaxAttempts int
	// BackoffBase is the wait before the second attempt; each later wait
	// doubles, up to BackoffMax, with random jitter of up to half of it.
	// Defaults 1 s and 60 s.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// ConnectTimeout, TLSHandshakeTimeout and AttemptTimeout bound each
	// attempt's TCP connect, TLS handshake and whole exchange (connect to
	// the last byte of the response). Defaults 5 s, 5 s, 10 s.
	ConnectTimeout      time.Duration
	TLSHandshakeTimeout time.Duration
	AttemptTimeout      time.Duration
	// DisableAfter is the number of events in a row whose delivery failed
	// after which the webhook is disabled. Default 10; 0 never.
	DisableAfter int
	// MaxWebhooks bounds the webhooks delivered to at once, each by its
	// own worker, so one hanging receiver holds one worker only.
	// Default 256.
	MaxWebhooks int
	// Lookahead is how many entries a worker reads at a time. Default 100.
	Lookahead int
	// FlushInterval is the longest a delivery outcome waits before it is
	// written through Raft with the cursor. Default 500 ms.
	FlushInterval time.Duration

	// AllowPrivate permits http URLs and targets on loopback and private
	// ranges (--webhook-allow-private). Link-local and metadata addresses
	// stay refused.
	AllowPrivate bool
	// AllowLoopback permits http URLs and loopback targets only (--dev).
	AllowLoopback bool
	// TLS is the base client configuration for https targets, for example
	// extra RootCAs. Nil uses the system roots.
	TLS *tls.Config

	// SMTP sends email alerts; a zero Addr turns email off.
	SMTP SMTPConfig

	// ExpiryCheckInterval is how often expiry warnings are considered.
	// Default 30 s.
	ExpiryCheckInterval time.Duration
	// RetentionInterval is how often the log is compacted. Default 1 h.
	RetentionInterval time.Duration
	// ApplyTimeout bounds one proposal. Default 10 s.
	ApplyTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// SMTPConfig is the node's mail relay (--smtp-addr and friends).
type SMTPConfig struct {
	// Addr is host:port of the relay; empty turns email off.
	Addr string
	// User and Password authenticate with PLAIN after STARTTLS; an empty
	// User skips authentication.
	User     string
	Password string
	// From is the envelope and header sender. Required with Addr.
	From string
	// TLS is the base configuration for STARTTLS (RootCAs, ServerName).
	// Nil uses the system roots and the relay's host name.
	TLS *tls.Config
	// AllowPlaintext permits a relay without STARTTLS. It is for a relay on
	// loopback only; credentials are never sent in clear text.
	AllowPlaintext bool
	// Timeout bounds one message: connect, TLS, authentication and data.
	// Default 30 s.
	Timeout time.Duration
	// DigestThreshold is the number of pending events above which one
	// digest message replaces one message per event. Default 5.
	DigestThreshold int
	// MaxAttempts bounds the tries of one message or digest. Default 5.
	MaxAttempts int
}

// DefaultDeliveryConfig returns the documented defaults.
func DefaultDeliveryConfig() DeliveryConfig {
	return DeliveryConfig{
		PollInterval:        time.Second,
		MaxAttempts:         6,
		BackoffBase:         time.Second,
		BackoffMax:          60 * time.Second,
		ConnectTimeout:      5 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
		AttemptTimeout:      10 * time.Second,
		DisableAfter:        10,
		MaxWebhooks:         256,
		Lookahead:           100,
		FlushInterval:       500 * time.Millisecond,
		SMTP:                SMTPConfig{Timeout: 30 * time.Second, DigestThreshold: 5, MaxAttempts: 5},
		ExpiryCheckInterval: 30 * time.Second,
		RetentionInterval:   time.Hour,
		ApplyTimeout:        10 * time.Second,
		Now:                 time.Now,
	}
}

// Validate checks every field and names the first invalid one.
func (c DeliveryConfig) Validate() error {
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"poll-interval", c.PollInterval}, {"webhook-backoff-base", c.BackoffBase},
		{"webhook-backoff-max", c.BackoffMax}, {"webhook-connect-timeout", c.ConnectTimeout},
		{"webhook-tls-timeout", c.TLSHandshakeTimeout}, {"webhook-timeout", c.AttemptTimeout},
		{"flush-interval", c.FlushInterval}, {"expiry-check-interval", c.ExpiryCheckInterval},
		{"retention-interval", c.RetentionInterval}, {"apply-timeout", c.ApplyTimeout},
	}
	for _, d := range durations {
		if d.d <= 0 {
			return invalid(d.name, "%s is not positive", d.d)
		}
	}
	switch {
	case c.NodeID == "":
		return invalid("node-id", "missing")
	case c.MaxAttempts < 1 || c.MaxAttempts > 20:
		return invalid("webhook-max-attempts", "%d is not between 1 and 20", c.MaxAttempts)
	case c.DisableAfter < 0:
		return invalid("webhook-disable-after", "%d is negative", c.DisableAfter)
	case c.MaxWebhooks < 1 || c.Lookahead < 1:
		return invalid("webhook-workers", "max webhooks %d and lookahead %d must be positive", c.MaxWebhooks, c.Lookahead)
	case c.Now == nil:
		return invalid("now", "clock is nil")
	}
	return c.SMTP.validate()
}

func (c SMTPConfig) validate() error {
	if c.Addr == "" {
		return nil
	}
	switch {
	case c.From == "":
		return invalid("smtp-from", "missing while smtp-addr is set; give the sender address")
	case c.Timeout <= 0:
		return invalid("smtp-timeout", "%s is not positive", c.Timeout)
	case c.DigestThreshold < 1 || c.MaxAttempts < 1:
		return invalid("smtp-digest-threshold", "digest threshold %d and attempts %d must be positive", c.DigestThreshold, c.MaxAttempts)
	}
	return nil
}
