package audit

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/fsm"
)

// ActionWebhookTest is the event of a test delivery.
const ActionWebhookTest = "webhook_test"

// TestResult is the outcome of a test delivery.
type TestResult struct {
	DeliveryID string `json:"deliveryId"`
	Delivered  bool   `json:"delivered"`
	StatusCode int    `json:"statusCode,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMs int64  `json:"durationMs"`
}

// SendTest makes one signed attempt to w with a webhook_test event, from
// the calling node, and reports the result. It writes nothing to the log.
func (d *Dispatcher) SendTest(ctx context.Context, w *fsm.Webhook) TestResult {
	start := time.Now()
	now := d.cfg.Now().UnixMilli()
	e := &fsm.AuditEntry{
		UUID: uuid.NewString(), Action: ActionWebhookTest, Severity: fsm.SeverityInfo,
		ActorKind: fsm.ActorSystem, VaultID: w.VaultID, SourceIP: fsm.SourceSystem,
		Detail: "test delivery", Count: 1, FirstAt: now, Timestamp: now, Node: d.cfg.NodeID,
	}
	res := TestResult{DeliveryID: e.UUID}
	secret, err := d.keyring.Open(w.WrappedKey, w.ID, w.Secret)
	if err != nil {
		res.Error = "signing secret cannot be opened with this node's root key"
		return res
	}
	defer clear(secret)
	body, err := EncodePayload(e)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	out := d.sender.attempt(ctx, w.URL, secret, body, res.DeliveryID, ActionWebhookTest, 1)
	res.Delivered, res.StatusCode = out.err == nil, out.status
	if out.err != nil {
		res.Error = clipText(out.err.Error(), fsm.MaxDeliveryErrorText)
	}
	res.DurationMs = time.Since(start).Milliseconds()
	return res
}
