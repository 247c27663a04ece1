package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/fsm"
)

// received is one request as a webhook receiver saw it.
type received struct {
	deliveryID, event, signature string
	attempt                      int
	body                         []byte
	at                           time.Time
}

// receiver is a real HTTP server on loopback that records every request
// and responds as respond decides for the n-th attempt of a delivery id.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newReceiver(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, attempt int)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		attempt, _ := strconv.Atoi(r.Header.Get(HeaderAttempt))
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{
			deliveryID: r.Header.Get(HeaderDeliveryID), event: r.Header.Get(HeaderEvent),
			signature: r.Header.Get(HeaderSignature), attempt: attempt, body: body, at: time.Now(),
		})
		rc.mu.Unlock()
		respond(w, r, attempt)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func okReply(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusOK) }

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

// verifySignature checks "t=…,v1=…" against secret and body.
func verifySignature(t *testing.T, header string, secret, body []byte) {
	t.Helper()
	ts, sig, ok := strings.Cut(header, ",")
	ts, ok1 := strings.CutPrefix(ts, "t=")
	sig, ok2 := strings.CutPrefix(sig, "v1=")
	if !ok || !ok1 || !ok2 {
		t.Fatalf("signature header %q is not t=…,v1=…", header)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "." + string(body)))
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(sig), []byte(want)) {
		t.Fatalf("signature %s does not verify over t=%s and the body", sig, ts)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		t.Fatalf("signature time %q is not the time of the attempt", ts)
	}
}

// decodePayload parses a webhook body.
func decodePayload(t *testing.T, body []byte) Payload {
	t.Helper()
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("webhook body %s: %v", body, err)
	}
	return p
}

// webhookState reads a webhook from the node's state.
func webhookState(t *testing.T, sm *fsm.FSM, id string) *fsm.Webhook {
	t.Helper()
	w, ok, err := sm.Webhook(testVault, id)
	if err != nil || !ok {
		t.Fatalf("webhook %s: found %v, %v", id, ok, err)
	}
	return w
}
