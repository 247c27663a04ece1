package cluster

import (
	"github.com/prometheus/client_golang/prometheus"
)

// nodeMetrics are the collectors that a node updates as it works. The
// gauges that read node state are built by Collectors.
type nodeMetrics struct {
	confirmDuration  prometheus.Histogram
	unconfirmed      prometheus.Counter
	eventBatchesSent prometheus.Counter
	eventsReceived   prometheus.Counter
	eventsDropped    prometheus.Counter
}

func newNodeMetrics() *nodeMetrics {
	return &nodeMetrics{
		confirmDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyward_confirm_duration_seconds",
			Help:    "Time from the commit of a security-critical write until every member applied it or counted as stale.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		unconfirmed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_confirm_unconfirmed_members_total",
			Help: "Members that did not confirm a security-critical write within the wait and were counted as stale.",
		}),
		eventBatchesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_peer_event_requests_sent_total",
			Help: "Requests carrying accepted nonces and failed authentications that peers acknowledged.",
		}),
		eventsReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_peer_events_received_total",
			Help: "Nonces and failed authentications received from peers.",
		}),
		eventsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_peer_event_batches_dropped_total",
			Help: "Event batches dropped because a peer stayed unreachable until its queue was full.",
		}),
	}
}

// Collectors returns the node's Prometheus collectors for the caller to
// register: staleness, readiness, applied index, forwarding counts,
// confirmation of security-critical writes and nonce propagation.
func (n *Node) Collectors() []prometheus.Collector {
	m := n.metrics
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyward_staleness_seconds",
			Help: "Time since this node last heard from a leader; 0 on the leader.",
		}, func() float64 { return n.Staleness().Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyward_node_ready",
			Help: "1 when the node has caught up since start and may answer machine requests (staleness aside), else 0.",
		}, func() float64 { return boolGauge(n.Ready()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyward_clock_skewed",
			Help: "1 when this node's clock disagrees with most peers by more than max-clock-skew, else 0.",
		}, func() float64 { _, skewed := n.ClockSkew(); return boolGauge(skewed) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyward_geoip_build_mismatch",
			Help: "1 when alive members decide countries with different IP-to-country database builds, else 0.",
		}, func() float64 { return boolGauge(len(n.GeoBuildMismatch()) > 0) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyward_applied_index",
			Help: "Index of the last log entry the state machine applied.",
		}, func() float64 { return float64(n.sm.AppliedIndex()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyward_forwards_sent_total",
			Help: "Writes and membership requests this node forwarded to the leader.",
		}, func() float64 { return float64(n.forwardsSent.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyward_forwards_served_total",
			Help: "Writes and membership requests this node received from other nodes.",
		}, func() float64 { return float64(n.forwardsServed.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyward_nonce_log_batches_dropped_total",
			Help: "Nonce batches dropped from the log that restarting peers pull, because it reached nonce-log-bytes.",
		}, func() float64 { return float64(n.events.log.droppedBatches()) }),
		m.confirmDuration, m.unconfirmed, m.eventBatchesSent, m.eventsReceived, m.eventsDropped,
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
