package throttle

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crawlpolite/crawlpolite/internal/policy"
)

// metrics are politeness series. The host label is the host for hosts named in the policy's rules
// and "other" for the rest: a crawler touches millions of hosts, a policy names a few.
type metrics struct {
	wait      *prometheus.HistogramVec
	inFlight  *prometheus.GaugeVec
	backoffs  *prometheus.CounterVec
	robots    *prometheus.CounterVec
	fallbacks prometheus.Counter
	late      prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crawlpolite_wait_seconds",
			Help:    "Time from a request's arrival to its turn's start (queue plus delay).",
			Buckets: []float64{.0005, .001, .005, .025, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"host"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "crawlpolite_host_in_flight",
			Help: "Turns this sidecar holds now.",
		}, []string{"host"}),
		backoffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crawlpolite_backoffs_total",
			Help: "Origin answers (429, 503) that pushed a host's next start back.",
		}, []string{"host"}),
		robots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crawlpolite_robots_lookups_total",
			Help: "robots.txt lookups by the status of the file: fetched, unavailable (allows all), unreachable (disallows all).",
		}, []string{"status"}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crawlpolite_local_fallback_total",
			Help: "Turns taken from the in-process semaphore because Redis was unreachable (--on-redis-down=local).",
		}),
		late: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "crawlpolite_start_lateness_seconds",
			Help: "How long after its turn's start a request was let go (scheduling, CPU starvation): the next " +
				"request's gap at the origin is short by as much.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .025, .05, .1, .25},
		}),
	}
	for _, c := range []prometheus.Collector{m.wait, m.inFlight, m.backoffs, m.robots, m.fallbacks, m.late} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// label is the request's group key (the host's own for groupBy: host) when its host is named in a
// rule, or its group is a domain some rule names ("*.example-blog.com" names example-blog.com),
// else "other": either way one series per name in the policy at most (per address for groupBy: ip).
func (m *metrics) label(p *policy.Policy, host, port, key string) string {
	if p.Named(host, port) || (strings.HasPrefix(key, "domain:") && p.NamesDomain(strings.TrimPrefix(key, "domain:"))) {
		return key
	}
	return "other"
}
