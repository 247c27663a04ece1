package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"

	"github.com/keyward/keyward/cluster/audit"
	"github.com/keyward/keyward/fsm"
)

// webhookSecretPrefix starts every signing secret, so a leaked one is easy
// to recognise in logs and scanners.
const webhookSecretPrefix = "whsec_"

// webhookView is a webhook as the API shows it: never its secret.
type webhookView struct {
	ID                  string   `json:"id"`
	VaultID             string   `json:"vaultId"`
	URL                 string   `json:"url"`
	Actions             []string `json:"actions"`
	Enabled             bool     `json:"enabled"`
	CreatedAt           int64    `json:"createdAt"`
	UpdatedAt           int64    `json:"updatedAt"`
	Cursor              uint64   `json:"cursor"`
	ConsecutiveFailures int      `json:"consecutiveFailures"`
	Delivered           uint64   `json:"delivered"`
	Failed              uint64   `json:"failed"`
	DisabledAt          int64    `json:"disabledAt,omitempty"`
	DisabledReason      string   `json:"disabledReason,omitempty"`
	// Secret is set only in the response that creates the webhook.
	Secret string `json:"secret,omitempty"`
}

func newWebhookView(w *fsm.Webhook) webhookView {
	return webhookView{
		ID: w.ID, VaultID: string(w.VaultID), URL: w.URL, Actions: w.Actions, Enabled: w.Enabled,
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt, Cursor: w.Cursor,
		ConsecutiveFailures: w.ConsecutiveFailures, Delivered: w.Delivered, Failed: w.Failed,
		DisabledAt: w.DisabledAt, DisabledReason: w.DisabledReason,
	}
}

// webhookPolicy is the address policy of webhook targets: the
// dispatcher's, or loopback-only on a dev node without one.
func (s *Server) webhookPolicy() audit.AddressPolicy {
	if s.cfg.Delivery != nil {
		return s.cfg.Delivery.Policy()
	}
	return audit.AddressPolicy{AllowLoopback: s.cfg.Dev}
}

// checkWebhookURL checks the form and, for a literal address, the target.
func (s *Server) checkWebhookURL(url string) error {
	if err := fsm.CheckWebhookURL(url); err != nil {
		return fail(ErrBadRequest, "%s", clientMessage(err, 0))
	}
	if err := s.webhookPolicy().CheckURL(url); err != nil {
		return fail(ErrBadRequest, "%s", clientMessage(err, 0))
	}
	return nil
}

// createWebhook serves POST …/webhooks {"url","actions","enabled"?}. The
// response (201) carries the signing secret, which is never shown again.
func (s *Server) createWebhook(rc *request, ac *adminCall) error {
	var in struct {
		URL     string   `json:"url"`
		Actions []string `json:"actions"`
		Enabled *bool    `json:"enabled"`
	}
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	if err := s.checkWebhookURL(in.URL); err != nil {
		return err
	}
	if len(in.Actions) == 0 {
		return fail(ErrBadRequest, `actions is empty; list the audit actions to send, or ["*"] for all`)
	}

	id := "whk_" + randomString(base36, 16)
	secret, wrapped, sealed, err := s.newWebhookSecret(id)
	if err != nil {
		return err
	}
	w := fsm.Webhook{ID: id, VaultID: ac.vault.ID, URL: in.URL, Actions: in.Actions, Enabled: in.Enabled == nil || *in.Enabled,
		Secret: sealed, WrappedKey: wrapped}
	resp, err := s.propose(rc, proposal{typ: fsm.CmdCreateWebhook, actor: ac.actor, payload: fsm.CreateWebhookPayload{Webhook: w}, fresh: true})
	if err != nil {
		return err
	}
	var stored fsm.Webhook
	if err := decodeResponse(resp, &stored); err != nil {
		return err
	}
	view := newWebhookView(&stored)
	view.Secret = secret
	return writeCreated(rc, view)
}

// newWebhookSecret makes a signing secret and seals it under a new data key
// with the webhook id as associated data.
func (s *Server) newWebhookSecret(id string) (secret string, wrapped []byte, sealed fsm.Sealed, err error) {
	if err := s.checkRootKeyBeforeSeal(); err != nil {
		return "", nil, fsm.Sealed{}, err
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	secret = webhookSecretPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	if wrapped, err = s.keyring.NewProjectKey(); err != nil {
		return "", nil, fsm.Sealed{}, err
	}
	if sealed, err = s.keyring.Seal(wrapped, id, []byte(secret)); err != nil {
		return "", nil, fsm.Sealed{}, err
	}
	return secret, wrapped, sealed, nil
}

// vaultWebhook returns a webhook of the call's vault, 404 otherwise.
func (s *Server) vaultWebhook(ac *adminCall, id string) (*fsm.Webhook, error) {
	if !hasIDForm(id, "whk_", 16, base36) {
		return nil, fail(ErrNotFound, "Webhook %s not found", clip(id))
	}
	w, found, err := s.sm.Webhook(ac.vault.ID, id)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fail(ErrNotFound, "Webhook %s not found in vault %s", id, ac.vault.ID)
	}
	return w, nil
}

// listWebhooks serves GET …/webhooks.
func (s *Server) listWebhooks(rc *request, ac *adminCall) error {
	hooks, err := s.sm.Webhooks(ac.vault.ID)
	if err != nil {
		return err
	}
	views := []webhookView{}
	for _, w := range hooks {
		views = append(views, newWebhookView(w))
	}
	return writeOK(rc, map[string]any{"webhooks": views})
}

// getWebhook serves GET …/webhooks/{webhookId}.
func (s *Server) getWebhook(rc *request, ac *adminCall) error {
	w, err := s.vaultWebhook(ac, rc.param("webhookId"))
	if err != nil {
		return err
	}
	return writeOK(rc, newWebhookView(w))
}

// updateWebhook serves PATCH …/webhooks/{webhookId} with any of url,
// actions and enabled.
func (s *Server) updateWebhook(rc *request, ac *adminCall) error {
	w, err := s.vaultWebhook(ac, rc.param("webhookId"))
	if err != nil {
		return err
	}
	var in struct {
		URL     *string   `json:"url"`
		Actions *[]string `json:"actions"`
		Enabled *bool     `json:"enabled"`
	}
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	if in.URL != nil {
		if err := s.checkWebhookURL(*in.URL); err != nil {
			return err
		}
	}
	if in.Actions != nil && len(*in.Actions) == 0 {
		return fail(ErrBadRequest, `actions is empty; list the audit actions to send, or ["*"] for all`)
	}
	resp, err := s.propose(rc, proposal{typ: fsm.CmdUpdateWebhook, actor: ac.actor, payload: fsm.UpdateWebhookPayload{
		VaultID: ac.vault.ID, ID: w.ID, URL: in.URL, Actions: in.Actions, Enabled: in.Enabled,
	}})
	if err != nil {
		return err
	}
	var stored fsm.Webhook
	if err := decodeResponse(resp, &stored); err != nil {
		return err
	}
	return writeOK(rc, newWebhookView(&stored))
}

// deleteWebhook serves DELETE …/webhooks/{webhookId}.
func (s *Server) deleteWebhook(rc *request, ac *adminCall) error {
	w, err := s.vaultWebhook(ac, rc.param("webhookId"))
	if err != nil {
		return err
	}
	_, err = s.propose(rc, proposal{typ: fsm.CmdDeleteWebhook, actor: ac.actor, payload: fsm.DeleteWebhookPayload{VaultID: ac.vault.ID, ID: w.ID}})
	if err != nil {
		return err
	}
	return writeOK(rc, map[string]any{"deleted": w.ID})
}

// testWebhook serves POST …/webhooks/{webhookId}/test: one signed
// webhook_test delivery from this node, answered with its result.
func (s *Server) testWebhook(rc *request, ac *adminCall) error {
	w, err := s.vaultWebhook(ac, rc.param("webhookId"))
	if err != nil {
		return err
	}
	if s.cfg.Delivery == nil {
		return fail(ErrUnavailable, "Webhook delivery is not configured on this node")
	}
	res := s.cfg.Delivery.SendTest(context.Background(), w)
	return writeOK(rc, res)
}

// listDeliveries serves GET …/webhooks/{webhookId}/deliveries?limit=,
// newest first.
func (s *Server) listDeliveries(rc *request, ac *adminCall) error {
	w, err := s.vaultWebhook(ac, rc.param("webhookId"))
	if err != nil {
		return err
	}
	limit, err := parseBoundedInt("limit", rc.ctx.QueryArgs().Peek("limit"), 1, fsm.MaxDeliveryLog)
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = 100
	}
	recs, err := s.sm.Deliveries(w.ID, limit)
	if err != nil {
		return err
	}
	return writeOK(rc, map[string]any{"deliveries": recs})
}
