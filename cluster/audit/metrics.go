package audit

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the package's Prometheus collectors. Create one set with
// NewMetrics, pass it to the Recorder and the Dispatcher, and register
// Collectors with the process registry.
type Metrics struct {
	// Dropped counts events lost to a full queue or an invalid field.
	Dropped prometheus.Counter
	// Events counts events handed to Record.
	Events prometheus.Counter
	// Written counts entries proposed successfully, folded or not.
	Written prometheus.Counter
	// Deliveries counts webhook events by final result (delivered, failed).
	Deliveries *prometheus.CounterVec
	// Attempts counts webhook HTTP attempts by result (ok, error, status).
	Attempts *prometheus.CounterVec
	// Emails counts email messages by result (sent, failed).
	Emails *prometheus.CounterVec
}

// NewMetrics creates unregistered collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		Dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_audit_dropped_total",
			Help: "Audit events dropped because the recorder queue was full or an event was invalid.",
		}),
		Events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_audit_recorded_events_total",
			Help: "Audit events handed to the recorder on this node.",
		}),
		Written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_audit_written_entries_total",
			Help: "Audit entries this node wrote through Raft, after coalescing.",
		}),
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_webhook_deliveries_total",
			Help: "Webhook events by final result.",
		}, []string{"result"}),
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_webhook_attempts_total",
			Help: "Webhook HTTP attempts by result.",
		}, []string{"result"}),
		Emails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_alert_emails_total",
			Help: "Alert email messages by result.",
		}, []string{"result"}),
	}
}

// Collectors returns every collector, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Dropped, m.Events, m.Written, m.Deliveries, m.Attempts, m.Emails}
}
