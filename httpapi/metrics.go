package httpapi

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// Results of a signed machine request, the label of
// keyward_machine_requests_total.
const (
	resultOK           = "ok"
	resultBadRequest   = "bad_request"
	resultUnauthorized = "unauthorized"
	resultForbidden    = "forbidden"
	resultBlocked      = "blocked"
	resultLocked       = "locked"
	resultNotFound     = "not_found"
	resultUnavailable  = "unavailable"
	resultError        = "error"
)

// metrics holds the server's collectors.
type metrics struct {
	httpRequests    *prometheus.CounterVec
	httpDuration    *prometheus.HistogramVec
	machineRequests *prometheus.CounterVec
	guardrailBlocks *prometheus.CounterVec
	blockThrottled  prometheus.Counter
	lastSeenDropped prometheus.Counter
	auditEvents     *prometheus.CounterVec
	panics          prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_http_requests_total",
			Help: "HTTP requests answered, by plane and status code.",
		}, []string{"plane", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyward_http_request_duration_seconds",
			Help:    "Time from the parsed request to the written response, by plane.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"plane"}),
		machineRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_machine_requests_total",
			Help: "Signed machine requests, by result.",
		}, []string{"result"}),
		guardrailBlocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_guardrail_failures_total",
			Help: "Failing guardrail axes on signed requests, by axis and whether the axis is in observe mode.",
		}, []string{"axis", "observe"}),
		blockThrottled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_guardrail_throttled_total",
			Help: "Guardrail-blocked requests rejected before signature verification, because the guardrail had blocked the same machine and source address repeatedly.",
		}),
		lastSeenDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_last_seen_dropped_total",
			Help: "Machine last-seen entries dropped because their Raft write failed; each machine's next request records it again.",
		}),
		auditEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_audit_events_total",
			Help: "Audit events emitted by the HTTP API, by action.",
		}, []string{"action"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_http_panics_total",
			Help: "Handler panics recovered, each returned to the client as a 500.",
		}),
	}
}

// register adds every collector to reg.
func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		m.httpRequests, m.httpDuration, m.machineRequests,
		m.guardrailBlocks, m.blockThrottled, m.lastSeenDropped, m.auditEvents, m.panics,
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("httpapi: register metrics: %w", err)
		}
	}
	return nil
}

// newMetricsHandler serves reg in the Prometheus text format.
func newMetricsHandler(reg *prometheus.Registry) fasthttp.RequestHandler {
	return fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}

// machineResult names the metric result for a machine-plane status code.
func machineResult(status int) string {
	switch {
	case status < 300:
		return resultOK
	case status == fasthttp.StatusBadRequest, status == fasthttp.StatusRequestEntityTooLarge,
		status == fasthttp.StatusRequestHeaderFieldsTooLarge:
		return resultBadRequest
	case status == fasthttp.StatusUnauthorized:
		return resultUnauthorized
	case status == fasthttp.StatusForbidden:
		return resultForbidden
	case status == fasthttp.StatusNotFound:
		return resultNotFound
	case status == fasthttp.StatusTooManyRequests:
		return resultLocked
	case status == fasthttp.StatusServiceUnavailable:
		return resultUnavailable
	}
	return resultError
}
