package proxy

import "github.com/prometheus/client_golang/prometheus"

// metrics are the proxy's own series, all without per-host labels.
type metrics struct {
	requests *prometheus.CounterVec
	inFlight prometheus.Gauge
	panics   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crawlpolite_proxy_requests_total",
			Help: "Requests by outcome: ok (the origin answered), intercepted and tunnel (CONNECTs), client_gone, or why the proxy answered itself.",
		}, []string{"outcome"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "crawlpolite_proxy_in_flight",
			Help: "Requests and tunnels holding a turn and talking to their origin now.",
		}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crawlpolite_panics_total",
			Help: "Panics recovered, by where: handler, intercepted, tunnel, or what the sidecar reported (Server.RecordPanic). The request failed; the process went on.",
		}, []string{"where"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.inFlight, m.panics} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) outcome(o string) { m.requests.WithLabelValues(o).Inc() }
