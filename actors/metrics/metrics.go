// Package metrics is mcpproxy's Prometheus instrumentation (prometheus/client_golang, which
// protoactor already brings into the build), served at GET /metrics in the text format.
//
// Each daemon has its own Metrics and registry, so two daemons in one process (the e2e
// tests) count apart. What is counted as it happens lives here (tool calls, HTTP
// requests, upstream restarts, activity records); what an actor owns is read from it at
// scrape time through Sources (server states, the /events hub's counters), so that no
// actor's state is copied out of it.
//
// # Series
//
//	mcpproxy_tool_calls_total{server,tool,outcome}          counter
//	mcpproxy_tool_call_duration_seconds{server}             histogram, the whole call
//	mcpproxy_tool_call_proxy_duration_seconds{server}       histogram, the proxy's share (total minus upstream)
//	mcpproxy_upstream_state{server,state}                   gauge, 1 for the server's state, 0 for the others
//	mcpproxy_upstream_restarts_total{server}                counter, restarts asked for (API, CLI, bulk)
//	mcpproxy_upstream_reconnects_total{server}              counter, connection attempts after a failure
//	mcpproxy_upstream_backoff_seconds{server}               gauge, the current backoff delay (0 when none)
//	mcpproxy_events_subscribers                             gauge, /events streams open
//	mcpproxy_events_dropped_subscribers_total               counter, subscribers dropped for not reading
//	mcpproxy_events_published_total                         counter, events published
//	mcpproxy_http_requests_total{route,method,status}       counter
//	mcpproxy_http_request_duration_seconds{route,method}    histogram
//	mcpproxy_activity_records_written_total                 counter
//	mcpproxy_activity_records_dropped_total                 counter
//	go_*, process_*                                         the Go and process collectors
//
// route is the route's pattern in the route table (/api/v1/servers/:name), never the
// path, so that names and ids do not make new series; "unmatched" for a path no route
// serves.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcpproxy/mcpproxy/actors/activity"
)

// Sources are what the scrape reads from the actors. Either may be nil.
type Sources struct {
	// Servers returns each server's name and state.
	Servers func(ctx context.Context) ([]ServerState, error)
	// Events returns the /events hub's counters.
	Events func(ctx context.Context) (EventStats, error)
	// States lists every state a server can be in, for the state set.
	States []string
}

// ServerState is one server's state at scrape time.
type ServerState struct{ Name, State string }

// EventStats are the hub's counters.
type EventStats struct {
	Subscribers        int
	DroppedSubscribers uint64
	Published          uint64
}

// scrapeTimeout bounds the questions a scrape asks the actors.
const scrapeTimeout = 5 * time.Second

// Metrics is one daemon's instrumentation. A nil *Metrics counts nothing.
type Metrics struct {
	reg *prometheus.Registry

	calls           *prometheus.CounterVec
	callDuration    *prometheus.HistogramVec
	proxyDuration   *prometheus.HistogramVec
	restarts        *prometheus.CounterVec
	reconnects      *prometheus.CounterVec
	backoff         *prometheus.GaugeVec
	httpRequests    *prometheus.CounterVec
	httpDuration    *prometheus.HistogramVec
	activityWritten prometheus.Counter
	activityDropped prometheus.Counter
}

// New builds the registry with every series and the scrape-time sources.
func New(src Sources) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcpproxy_tool_calls_total",
		Help: "Tool calls agents made through the MCP endpoints, by server, tool and outcome (ok, tool_error, refused, error).",
	}, []string{"server", "tool", "outcome"})
	m.callDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mcpproxy_tool_call_duration_seconds",
		Help:    "Duration of tool calls as the proxy saw them, from the request to the answer.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
	}, []string{"server"})
	m.proxyDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mcpproxy_tool_call_proxy_duration_seconds",
		Help:    "The proxy's own share of each tool call: its duration minus the upstream's time.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	}, []string{"server"})
	m.restarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcpproxy_upstream_restarts_total",
		Help: "Restarts of an upstream's connection that were asked for (API, CLI, bulk restart).",
	}, []string{"server"})
	m.reconnects = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcpproxy_upstream_reconnects_total",
		Help: "Connection attempts to an upstream after it failed (the end of a backoff, or a reconnect).",
	}, []string{"server"})
	m.backoff = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mcpproxy_upstream_backoff_seconds",
		Help: "The delay of an upstream's current backoff before it connects again; 0 when it is not backing off.",
	}, []string{"server"})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcpproxy_http_requests_total",
		Help: "HTTP requests served, by route pattern, method and status.",
	}, []string{"route", "method", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mcpproxy_http_request_duration_seconds",
		Help:    "Latency of HTTP requests, by route pattern and method (streams count until they end).",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "method"})
	m.activityWritten = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mcpproxy_activity_records_written_total",
		Help: "Activity records written to the store.",
	})
	m.activityDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mcpproxy_activity_records_dropped_total",
		Help: "Activity records dropped: too many waited for the writer, or a write failed.",
	})
	m.reg.MustRegister(m.calls, m.callDuration, m.proxyDuration, m.restarts, m.reconnects, m.backoff,
		m.httpRequests, m.httpDuration, m.activityWritten, m.activityDropped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&scrape{src: src})
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry is the daemon's registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Call counts one activity record: the call, its duration and the proxy's share.
func (m *Metrics) Call(r activity.Record) {
	if m == nil {
		return
	}
	tool := r.Tool
	if tool == "" {
		tool = r.Method
	}
	m.calls.WithLabelValues(r.Server, tool, r.Outcome).Inc()
	d := r.Duration()
	m.callDuration.WithLabelValues(r.Server).Observe(d.Seconds())
	if r.Upstream > 0 || r.Outcome != activity.OutcomeRefused {
		m.proxyDuration.WithLabelValues(r.Server).Observe(max(d-r.Upstream, 0).Seconds())
	}
}

// ActivityWritten and ActivityDropped count activity records.
func (m *Metrics) ActivityWritten(n int) {
	if m != nil {
		m.activityWritten.Add(float64(n))
	}
}

// ActivityDropped: see ActivityWritten.
func (m *Metrics) ActivityDropped(n int) {
	if m != nil {
		m.activityDropped.Add(float64(n))
	}
}

// HTTP counts one request.
func (m *Metrics) HTTP(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
	default:
		method = "other" // the method is the client's: it must not make series
	}
	m.httpRequests.WithLabelValues(route, method, statusText(status)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(d.Seconds())
}

func statusText(code int) string {
	var b [3]byte
	if code < 100 || code > 999 {
		return "000"
	}
	b[0], b[1], b[2] = byte('0'+code/100), byte('0'+code/10%10), byte('0'+code%10)
	return string(b[:])
}

// UpstreamRestarted counts a restart asked for.
func (m *Metrics) UpstreamRestarted(server string) {
	if m != nil {
		m.restarts.WithLabelValues(server).Inc()
	}
}

// UpstreamReconnecting counts a connection attempt after a failure.
func (m *Metrics) UpstreamReconnecting(server string) {
	if m != nil {
		m.reconnects.WithLabelValues(server).Inc()
	}
}

// UpstreamBackoff sets the server's current backoff delay (0: none).
func (m *Metrics) UpstreamBackoff(server string, delay time.Duration) {
	if m != nil {
		m.backoff.WithLabelValues(server).Set(delay.Seconds())
	}
}

// UpstreamGone forgets the per-server series of a server that is removed.
func (m *Metrics) UpstreamGone(server string) {
	if m == nil {
		return
	}
	m.backoff.DeleteLabelValues(server)
}

// scrape is the collector of what the actors own, asked at each scrape.
type scrape struct{ src Sources }

var (
	stateDesc = prometheus.NewDesc("mcpproxy_upstream_state",
		"The upstream's state: 1 for the state it is in, 0 for the others.", []string{"server", "state"}, nil)
	subscribersDesc = prometheus.NewDesc("mcpproxy_events_subscribers",
		"/events streams open.", nil, nil)
	droppedDesc = prometheus.NewDesc("mcpproxy_events_dropped_subscribers_total",
		"/events subscribers dropped because they did not read.", nil, nil)
	publishedDesc = prometheus.NewDesc("mcpproxy_events_published_total",
		"Events published on /events.", nil, nil)
)

func (s *scrape) Describe(ch chan<- *prometheus.Desc) {
	ch <- stateDesc
	ch <- subscribersDesc
	ch <- droppedDesc
	ch <- publishedDesc
}

func (s *scrape) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if s.src.Servers != nil {
		if servers, err := s.src.Servers(ctx); err == nil {
			for _, srv := range servers {
				for _, st := range s.src.States {
					v := 0.0
					if st == srv.State {
						v = 1
					}
					ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, v, srv.Name, st)
				}
			}
		} else {
			ch <- prometheus.NewInvalidMetric(stateDesc, err)
		}
	}
	if s.src.Events != nil {
		if st, err := s.src.Events(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(subscribersDesc, prometheus.GaugeValue, float64(st.Subscribers))
			ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(st.DroppedSubscribers))
			ch <- prometheus.MustNewConstMetric(publishedDesc, prometheus.CounterValue, float64(st.Published))
		} else {
			ch <- prometheus.NewInvalidMetric(subscribersDesc, err)
		}
	}
}
