package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/cluster"
	"github.com/keyward/keyward/cluster/audit"
	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/fsm/seal"
	"github.com/keyward/keyward/httpapi"
)

// alertOptions are the server flags of the audit log and its alerts.
type alertOptions struct {
	smtpAddr            string
	smtpUser            string
	smtpPasswordFile    string
	smtpFrom            string
	smtpAllowPlaintext  bool
	webhookAllowPrivate bool
}

func (a *alertOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&a.smtpAddr, "smtp-addr", "", "Mail relay for email alerts, host:port; empty turns email alerts off.")
	f.StringVar(&a.smtpUser, "smtp-user", "", "User name for PLAIN authentication with the mail relay, sent only after STARTTLS.")
	f.StringVar(&a.smtpPasswordFile, "smtp-password-file", "", "File that holds the mail relay password on its first line.")
	f.StringVar(&a.smtpFrom, "smtp-from", "", "Sender address of email alerts, such as keyward@example.com.")
	f.BoolVar(&a.smtpAllowPlaintext, "smtp-allow-plaintext", false, "Allow a mail relay without STARTTLS (a relay on this host); credentials are never sent in clear text.")
	f.BoolVar(&a.webhookAllowPrivate, "webhook-allow-private", false, "Allow webhook URLs over http and targets on loopback and private addresses; link-local and metadata addresses stay refused.")
}

// smtpConfig builds the mail relay configuration from the flags.
func (a *alertOptions) smtpConfig() (audit.SMTPConfig, error) {
	cfg := audit.DefaultDeliveryConfig().SMTP
	if a.smtpAddr == "" {
		if a.smtpUser != "" || a.smtpFrom != "" || a.smtpPasswordFile != "" {
			return cfg, errors.New("--smtp-user, --smtp-from and --smtp-password-file need --smtp-addr")
		}
		return cfg, nil
	}
	cfg.Addr, cfg.User, cfg.From, cfg.AllowPlaintext = a.smtpAddr, a.smtpUser, a.smtpFrom, a.smtpAllowPlaintext
	if a.smtpPasswordFile != "" {
		data, err := os.ReadFile(a.smtpPasswordFile)
		if err != nil {
			return cfg, fmt.Errorf("read --smtp-password-file: %w", err)
		}
		cfg.Password, _, _ = strings.Cut(string(data), "\n")
		cfg.Password = strings.TrimRight(cfg.Password, "\r")
	}
	return cfg, nil
}

// alertWiring holds the node's audit recorder and the leader's delivery,
// with the metrics registry they share with the HTTP API.
type alertWiring struct {
	o          serverOptions
	logger     *slog.Logger
	registry   *prometheus.Registry
	metrics    *audit.Metrics
	applier    *lateApplier
	dispatcher *audit.Dispatcher
	recorder   *audit.Recorder
}

// lateApplier forwards to the cluster node once it exists: the leader
// jobs must be in the node's configuration before the node is made.
type lateApplier struct {
	node atomic.Pointer[cluster.Node]
}

func (l *lateApplier) Apply(ctx context.Context, cmd *fsm.Command) (*fsm.Response, error) {
	n := l.node.Load()
	if n == nil {
		return nil, cluster.ErrNoLeader
	}
	return n.Apply(ctx, cmd)
}

func newAlertWiring(o serverOptions, sm *fsm.FSM, keyring *seal.Keyring, logger *slog.Logger) (*alertWiring, error) {
	smtp, err := o.alerts.smtpConfig()
	if err != nil {
		return nil, err
	}
	a := &alertWiring{o: o, logger: logger, registry: prometheus.NewRegistry(), metrics: audit.NewMetrics(), applier: &lateApplier{}}
	if err := a.registry.Register(multiCollector(a.metrics.Collectors())); err != nil {
		return nil, fmt.Errorf("register audit metrics: %w", err)
	}

	cfg := audit.DefaultDeliveryConfig()
	cfg.NodeID = o.nodeID
	cfg.AllowPrivate = o.alerts.webhookAllowPrivate
	cfg.AllowLoopback = o.dev
	cfg.SMTP = smtp
	if a.dispatcher, err = audit.NewDispatcher(cfg, a.applier, sm, keyring, a.metrics, logger); err != nil {
		return nil, err
	}
	return a, nil
}

// leaderJobs are the dispatcher's jobs for cluster.Config.LeaderJobs.
func (a *alertWiring) leaderJobs() []func(context.Context) {
	return a.dispatcher.Jobs()
}

// start binds the node and starts the recorder.
func (a *alertWiring) start(node *cluster.Node) error {
	a.applier.node.Store(node)
	cfg := audit.DefaultRecorderConfig()
	cfg.NodeID = a.o.nodeID
	rec, err := audit.NewRecorder(cfg, a.applier, a.metrics, a.logger)
	if err != nil {
		return err
	}
	a.recorder = rec
	return nil
}

// httpOptions sets the HTTP API's registry, auditor and delivery.
func (a *alertWiring) httpOptions(cfg *httpapi.Config) {
	cfg.Registry = a.registry
	cfg.Auditor = httpapi.RecorderAuditor(a.recorder)
	cfg.Delivery = a.dispatcher
}

// close writes what the recorder holds.
func (a *alertWiring) close(ctx context.Context) error {
	if a.recorder == nil {
		return nil
	}
	return a.recorder.Close(ctx)
}

// multiCollector registers several collectors as one.
type multiCollector []prometheus.Collector

func (m multiCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m {
		c.Describe(ch)
	}
}

func (m multiCollector) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m {
		c.Collect(ch)
	}
}
