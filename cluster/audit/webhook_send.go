package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/fsm"
)

// Delivery headers.
const (
	HeaderDeliveryID = "X-Keyward-Delivery-Id"
	HeaderEvent      = "X-Keyward-Event"
	HeaderSignature  = "X-Keyward-Signature"
	HeaderAttempt    = "X-Keyward-Attempt"
)

// maxResponseBytes is how much of a receiver's response is read; the rest
// is discarded with the connection.
const maxResponseBytes = 64 << 10

// deliveryNamespace derives delivery ids.
var deliveryNamespace = uuid.MustParse("0f5d6c4e-8a3b-4b8e-b7f1-2d9c4e6a1b35")

// DeliveryID is the id of delivering entry seq to webhook: the same on
// every attempt and on every leader, so receivers can de-duplicate.
func DeliveryID(webhookID string, seq uint64) string {
	return uuid.NewSHA1(deliveryNamespace, []byte(webhookID+"/"+strconv.FormatUint(seq, 10))).String()
}

// Payload is the JSON body of a webhook request. Timestamp is the entry's
// time, so the body is identical on every attempt.
type Payload struct {
	ID        string          `json:"id"`
	Event     string          `json:"event"`
	Severity  string          `json:"severity"`
	Timestamp int64           `json:"timestamp"`
	Data      *fsm.AuditEntry `json:"data"`
}

// EncodePayload returns the body sent for an entry.
func EncodePayload(e *fsm.AuditEntry) ([]byte, error) {
	return json.Marshal(Payload{ID: e.UUID, Event: e.Action, Severity: e.Severity, Timestamp: e.Timestamp, Data: e})
}

// Sign returns the X-Keyward-Signature value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">".
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// sender performs webhook attempts with the address policy applied at
// dial time and a bounded time per attempt.
type sender struct {
	cfg    DeliveryConfig
	policy AddressPolicy
	client *http.Client
}

func newSender(cfg DeliveryConfig) *sender {
	policy := AddressPolicy{AllowPrivate: cfg.AllowPrivate, AllowLoopback: cfg.AllowLoopback}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLS != nil {
		tlsCfg = cfg.TLS.Clone()
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us and bypass the address policy
		DialContext:           policy.DialContext(cfg.ConnectTimeout),
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   cfg.TLSHandshakeTimeout,
		ResponseHeaderTimeout: cfg.AttemptTimeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       30 * time.Second,
	}
	return &sender{cfg: cfg, policy: policy, client: &http.Client{
		Transport: transport,
		Timeout:   cfg.AttemptTimeout,
		// A redirect could lead to any address, so a receiver must respond
		// at the configured URL.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// attemptResult is the outcome of one HTTP attempt.
type attemptResult struct {
	status int
	err    error
	// final marks a failure that a retry cannot fix (a 4xx other than 408
	// and 429, a refused address or URL).
	final bool
}

// attempt sends one request. The signature uses the attempt's own time,
// so it verifies against the receiver's clock, while the body stays the
// same.
func (s *sender) attempt(ctx context.Context, url string, secret, body []byte, deliveryID, event string, n int) attemptResult {
	if err := s.policy.CheckURL(url); err != nil {
		return attemptResult{err: err, final: true}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return attemptResult{err: err, final: true}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Keyward-Webhook/1")
	req.Header.Set(HeaderDeliveryID, deliveryID)
	req.Header.Set(HeaderEvent, event)
	req.Header.Set(HeaderAttempt, strconv.Itoa(n))
	req.Header.Set(HeaderSignature, Sign(secret, body, s.cfg.Now()))

	resp, err := s.client.Do(req)
	if err != nil {
		return attemptResult{err: err, final: errors.Is(err, ErrAddressNotAllowed)}
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300 && err == nil:
		return attemptResult{status: resp.StatusCode}
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return attemptResult{status: resp.StatusCode, err: fmt.Errorf("read response: %w", err)}
	}
	final := resp.StatusCode >= 400 && resp.StatusCode < 500 &&
		resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests
	return attemptResult{status: resp.StatusCode, err: fmt.Errorf("HTTP %d", resp.StatusCode), final: final}
}

// backoff returns the wait before attempt n+1: BackoffBase doubled per
// attempt up to BackoffMax, less a random part of up to half, so retries
// of many events spread out.
func (s *sender) backoff(n int) time.Duration {
	d := s.cfg.BackoffBase << min(n-1, 30)
	if d <= 0 || d > s.cfg.BackoffMax {
		d = s.cfg.BackoffMax
	}
	return d - rand.N(d/2+1)
}

// deliver sends one entry to one webhook with retries and returns its
// record. ctx ending (leadership lost) stops it; the caller then does not
// store the record, so the next leader delivers again with the same id.
func (s *sender) deliver(ctx context.Context, w *fsm.Webhook, secret []byte, e *fsm.AuditEntry, m *Metrics) fsm.DeliveryRecord {
	start := s.cfg.Now()
	rec := fsm.DeliveryRecord{
		DeliveryID: DeliveryID(w.ID, e.ID), WebhookID: w.ID, Seq: e.ID, Event: e.Action, Status: fsm.DeliveryFailed,
	}
	body, err := EncodePayload(e)
	if err != nil {
		rec.Attempts, rec.Error = 1, err.Error()
		return rec
	}
	for n := 1; n <= s.cfg.MaxAttempts && ctx.Err() == nil; n++ {
		res := s.attempt(ctx, w.URL, secret, body, rec.DeliveryID, e.Action, n)
		rec.Attempts, rec.StatusCode = n, res.status
		if res.err == nil {
			m.Attempts.WithLabelValues("ok").Inc()
			rec.Status, rec.Error = fsm.DeliveryDelivered, ""
			break
		}
		m.Attempts.WithLabelValues(attemptLabel(res)).Inc()
		rec.Error = clipText(res.err.Error(), fsm.MaxDeliveryErrorText)
		if res.final || n == s.cfg.MaxAttempts {
			break
		}
		select {
		case <-time.After(s.backoff(n)):
		case <-ctx.Done():
		}
	}
	rec.DurationMs = s.cfg.Now().Sub(start).Milliseconds()
	rec.At = s.cfg.Now().UnixMilli()
	return rec
}

func attemptLabel(res attemptResult) string {
	if res.status != 0 {
		return "status"
	}
	return "error"
}
