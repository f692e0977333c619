package cti

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are cti's Prometheus figures, built from an injected Registerer.
type metrics struct {
	events             *prometheus.CounterVec
	eventBatch         prometheus.Histogram
	eventFlush         prometheus.Histogram
	subscribersDropped prometheus.Counter

	sipRequests  *prometheus.CounterVec // by method
	sipResponses *prometheus.CounterVec // sent, by method and code
	sipDropped   *prometheus.CounterVec // by reason
	authRefused  *prometheus.CounterVec // digest answers refused, by reason

	activeCalls   prometheus.Gauge
	calls         *prometheus.CounterVec // ended calls by result
	waiting       *prometheus.GaugeVec   // callers waiting, by tenant and queue
	agents        *prometheus.GaugeVec   // agents by state
	setupLatency  prometheus.Histogram
	registrations prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ctid_cti_events_total", Help: "Events written to the event logs, by type.",
		}, []string{"type"}),
		eventBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ctid_cti_event_batch_size", Help: "Events written per group-commit transaction.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}),
		eventFlush: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ctid_cti_event_flush_seconds", Help: "Time to write one batch of events.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		subscribersDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ctid_cti_event_subscribers_dropped_total", Help: "Event subscribers dropped for falling behind.",
		}),
		sipRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ctid_cti_sip_requests_total", Help: "SIP requests received, by method.",
		}, []string{"method"}),
		sipResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ctid_cti_sip_responses_total", Help: "SIP responses sent by ctid's handlers, by method and status code.",
		}, []string{"method", "code"}),
		sipDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ctid_cti_sip_dropped_total", Help: "SIP input dropped before handling, by reason.",
		}, []string{"reason"}),
		authRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ctid_cti_sip_auth_refused_total", Help: "SIP digest answers refused: bad_credentials, locked, replayed_nonce.",
		}, []string{"reason"}),
		activeCalls: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ctid_cti_active_calls", Help: "Calls in progress.",
		}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ctid_cti_calls_total", Help: "Calls ended, by result.",
		}, []string{"result"}),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ctid_cti_queue_waiting", Help: "Callers waiting in a queue.",
		}, []string{"tenant", "queue"}),
		agents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ctid_cti_agents", Help: "Agents known to this process, by state.",
		}, []string{"state"}),
		setupLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ctid_cti_call_setup_seconds", Help: "From an inbound INVITE to the first agent leg ringing.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		registrations: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ctid_cti_registrations", Help: "Registered contacts held by this process.",
		}),
	}
	reg.MustRegister(m.events, m.eventBatch, m.eventFlush, m.subscribersDropped,
		m.sipRequests, m.sipResponses, m.sipDropped, m.authRefused,
		m.activeCalls, m.calls, m.waiting, m.agents, m.setupLatency, m.registrations)
	return m
}
