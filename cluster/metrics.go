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
// confirmation of security-critical writes, nonce propagation and the
// health of the data disk.
func (n *Node) Collectors() []prometheus.Collector {
	m := n.metrics
	collectors := []prometheus.Collector{
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
	collectors = append(collectors, n.journalCollectors()...)
	return append(collectors, n.diskCollectors()...)
}

// journalCollectors report the nonce journal under DataDir/nonce-journal.
func (n *Node) journalCollectors() []prometheus.Collector {
	stats := func() (int64, uint64, uint64) {
		if j := n.events.log.journal.Load(); j != nil {
			return j.stats()
		}
		return 0, 0, 0
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyward_nonce_journal_bytes",
			Help: "Size of the nonce journal that lets a restarted node reject nonces accepted before it stopped.",
		}, func() float64 { size, _, _ := stats(); return float64(size) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyward_nonce_journal_write_errors_total",
			Help: "Nonce batches that could not be written to the journal, for example because the data volume was full.",
		}, func() float64 { _, failed, _ := stats(); return float64(failed) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyward_nonce_journal_segments_dropped_total",
			Help: "Journal segments deleted before their nonces expired, because the journal reached nonce-log-bytes.",
		}, func() float64 { _, _, dropped := stats(); return float64(dropped) }),
	}
}

// diskCollectors report the latency of writes to raft.db and the free
// space of the data volume. An alert on keyward_disk_stalled or
// keyward_data_disk_low reaches operators through the metrics endpoint,
// which needs no disk space.
func (n *Node) diskCollectors() []prometheus.Collector {
	d := n.disk
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyward_disk_stalled",
			Help: "1 while a write to raft.db runs longer than the disk stall threshold, and for 30 s after one did, else 0.",
		}, func() float64 { return boolGauge(d.health().Stalled) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyward_raft_store_write_in_progress_seconds",
			Help: "Age of the oldest write to raft.db still in progress; 0 when none is.",
		}, func() float64 { return d.inProgress().Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyward_data_disk_free_bytes",
			Help: "Free space on the volume of the data directory, as available to unprivileged users.",
		}, func() float64 { free, _ := d.freeBytes(diskPoll); return float64(free) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyward_data_disk_low",
			Help: "1 while the data volume is below the disk reserve and the node rejects new commands for its log, else 0.",
		}, func() float64 { return boolGauge(d.health().Low) }),
		d.writeDuration, d.slowWrites, d.rejected,
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
