package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/fsm/seal"
)

// Dispatcher runs the leader's audit work: webhook and email delivery,
// expiry warnings and retention. Its jobs go into cluster.Config.LeaderJobs
// and run only while the node leads; each returns when its context ends.
type Dispatcher struct {
	cfg     DeliveryConfig
	node    Applier
	sm      *fsm.FSM
	keyring *seal.Keyring
	metrics *Metrics
	logger  *slog.Logger
	sender  *sender
	mailer  *mailer
}

// NewDispatcher validates cfg. keyring opens webhook signing secrets; a
// nil metrics creates unregistered collectors; a nil logger discards logs.
func NewDispatcher(cfg DeliveryConfig, node Applier, sm *fsm.FSM, keyring *seal.Keyring, metrics *Metrics, logger *slog.Logger) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if node == nil || sm == nil || keyring == nil {
		return nil, fmt.Errorf("%w: the dispatcher needs an applier, a state machine and a keyring", ErrInvalidConfig)
	}
	if metrics == nil {
		metrics = NewMetrics()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{
		cfg: cfg, node: node, sm: sm, keyring: keyring, metrics: metrics,
		logger: logger.With("component", "audit-delivery"),
		sender: newSender(cfg),
	}
	if cfg.SMTP.Addr != "" {
		d.mailer = newMailer(cfg.SMTP)
	}
	return d, nil
}

// Jobs returns the leader jobs: webhooks, email, expiry warnings and
// retention.
func (d *Dispatcher) Jobs() []func(context.Context) {
	return []func(context.Context){d.RunWebhooks, d.RunEmail, d.RunExpiryWarnings, d.RunRetention}
}

// Policy returns the address policy that webhook targets must pass.
func (d *Dispatcher) Policy() AddressPolicy { return d.sender.policy }

// apply proposes a command from the leader's jobs.
func (d *Dispatcher) apply(ctx context.Context, typ fsm.CommandType, payload any) (*fsm.Response, error) {
	cmd, err := fsm.NewCommand(typ, d.cfg.Now().UnixMilli(), fsm.Actor{Kind: fsm.ActorSystem, ID: "audit-delivery", SourceIP: fsm.SourceSystem}, payload)
	if err != nil {
		return nil, err
	}
	cmd.Node = d.cfg.NodeID
	ctx, cancel := context.WithTimeout(ctx, d.cfg.ApplyTimeout)
	defer cancel()
	resp, err := d.node.Apply(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return resp, resp.Err()
}

// waitChange waits for a commit that adds audit entries, the poll
// interval, or the end of ctx; it reports whether ctx is still live.
func (d *Dispatcher) waitChange(ctx context.Context, changed <-chan struct{}, limit time.Duration) bool {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-changed:
	case <-t.C:
	case <-ctx.Done():
	}
	return ctx.Err() == nil
}

// RunWebhooks starts a worker per enabled webhook and stops each when its
// webhook goes away, is disabled or leadership ends. At most MaxWebhooks
// workers run.
func (d *Dispatcher) RunWebhooks(ctx context.Context) {
	var (
		mu      sync.Mutex
		running = map[string]bool{}
		wg      sync.WaitGroup
	)
	defer wg.Wait()
	for {
		changed := d.sm.AuditChanged()
		hooks, err := d.sm.Webhooks("")
		if err != nil {
			d.logger.Warn("list webhooks", "err", err)
		}
		mu.Lock()
		for _, w := range hooks {
			if !w.Enabled || running[w.ID] || len(running) >= d.cfg.MaxWebhooks {
				continue
			}
			running[w.ID] = true
			wg.Add(1)
			go func(vault fsm.VaultID, id string) {
				defer wg.Done()
				d.runWorker(ctx, vault, id)
				mu.Lock()
				delete(running, id)
				mu.Unlock()
			}(w.VaultID, w.ID)
		}
		mu.Unlock()
		if !d.waitChange(ctx, changed, d.cfg.PollInterval) {
			return
		}
	}
}

// decodeBody decodes a successful response's body.
func decodeBody(resp *fsm.Response, v any) error {
	return json.Unmarshal(resp.Body, v)
}
