package screenpop

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	connections    prometheus.Gauge
	messages       *prometheus.CounterVec
	disconnects    *prometheus.CounterVec
	deliverSeconds *prometheus.HistogramVec
	ackSeconds     prometheus.Histogram
	buildSeconds   prometheus.Histogram
}

var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ctid_screenpop_connections",
			Help: "Console WebSocket connections open."}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ctid_screenpop_messages_total",
			Help: "Messages written to consoles, by type."}, []string{"type"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ctid_screenpop_disconnects_total",
			Help: "Consoles the server disconnected, by reason (slow: its send queue was full)."}, []string{"reason"}),
		deliverSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ctid_screenpop_delivery_seconds",
			Help: "From the event's time to its frame written to a console (live messages), by type.", Buckets: latencyBuckets}, []string{"type"}),
		ackSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ctid_screenpop_ack_seconds",
			Help: "From a pop written to its acknowledgement by the console.", Buckets: latencyBuckets}),
		buildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ctid_screenpop_build_seconds",
			Help: "Time to build one call's pop payload (lookups included).", Buckets: latencyBuckets}),
	}
	if reg != nil {
		reg.MustRegister(m.connections, m.messages, m.disconnects, m.deliverSeconds, m.ackSeconds, m.buildSeconds)
	}
	return m
}
