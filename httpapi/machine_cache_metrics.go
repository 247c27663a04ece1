package httpapi

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward/keyward/fsm"
)

// registerMachineCacheMetrics exports the counts of the state's machine
// cache. A rising miss rate with a full cache means the machines that sign
// requests do not fit, and --machine-cache-entries should grow.
func registerMachineCacheMetrics(reg prometheus.Registerer, sm *fsm.FSM) error {
	stat := func(field func(fsm.MachineCacheStats) float64) func() float64 {
		return func() float64 { return field(sm.MachineCacheStats()) }
	}
	collectors := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyward_machine_cache_entries",
			Help: "Machines whose records this node holds in memory.",
		}, stat(func(st fsm.MachineCacheStats) float64 { return float64(st.Entries) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyward_machine_cache_capacity",
			Help: "Most machines this node holds in memory (--machine-cache-entries, rounded up to a multiple of 64).",
		}, stat(func(st fsm.MachineCacheStats) float64 { return float64(st.Capacity) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyward_machine_cache_hits_total",
			Help: "Machine lookups served from memory.",
		}, stat(func(st fsm.MachineCacheStats) float64 { return float64(st.Hits) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyward_machine_cache_misses_total",
			Help: "Machine lookups that read the store, because the machine was not in memory or does not exist.",
		}, stat(func(st fsm.MachineCacheStats) float64 { return float64(st.Misses) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyward_machine_cache_evictions_total",
			Help: "Machines dropped from memory to make room for others.",
		}, stat(func(st fsm.MachineCacheStats) float64 { return float64(st.Evictions) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyward_machine_load_errors_total",
			Help: "Machine records that could not be read or decoded; each such machine was treated as unknown. Any value above zero needs a look at the node's log and disk.",
		}, stat(func(st fsm.MachineCacheStats) float64 { return float64(st.LoadErrors) })),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("httpapi: register machine cache metrics: %w", err)
		}
	}
	return nil
}
