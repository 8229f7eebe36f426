package daemon

import (
	"context"
	"os"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/activity"
	"github.com/mcpproxy/mcpproxy/actors/metrics"
)

// startMetrics builds the daemon's Prometheus registry; the scrape asks the registry for
// the servers' states and the hub for its counters (d.Client is set before anything is
// served).
func (d *Daemon) startMetrics() {
	hub := actors.NewHubClient(d.System, d.Hub)
	states := []string{}
	for _, s := range []actors.State{actors.StateDisabled, actors.StateConnecting, actors.StateReady, actors.StateError,
		actors.StateBackoff, actors.StateStopping, actors.StateNeedsAuth} {
		states = append(states, string(s))
	}
	d.Metrics = metrics.New(metrics.Sources{
		States: states,
		Servers: func(ctx context.Context) ([]metrics.ServerState, error) {
			servers, err := d.Client.Servers(ctx)
			out := make([]metrics.ServerState, len(servers))
			for i, s := range servers {
				out[i] = metrics.ServerState{Name: s.Name, State: string(s.State)}
			}
			return out, err
		},
		Events: func(ctx context.Context) (metrics.EventStats, error) {
			st, err := hub.Stats(ctx)
			return metrics.EventStats{Subscribers: st.Subscribers, DroppedSubscribers: st.Dropped, Published: st.Published}, err
		},
	})
}

// startActivity spawns the activity log. Its records are scrubbed of the store's secret
// values, counted in the metrics, and published on /events as activity.recorded.
//
// MCPPROXY_ACTIVITY=off starts none: nothing is recorded (nor counted in the call
// metrics) and the activity routes answer 503. It is there to measure what recording
// costs (the bench's B11 compares both in one run), not as a setting.
func (d *Daemon) startActivity() {
	if os.Getenv("MCPPROXY_ACTIVITY") == "off" {
		return
	}
	c, err := activity.Spawn(d.System, activity.Options{
		Store: d.Store, Logger: d.Logger, Config: d.Config.Activity, Secrets: d.Store,
		Published: func(r activity.Record) {
			d.System.Root.Send(d.Hub, actors.Event{Name: activity.EventRecorded, Payload: r})
		},
		Recorded: d.Metrics.Call, Written: d.Metrics.ActivityWritten, Dropped: d.Metrics.ActivityDropped,
	})
	if err != nil {
		panic(err) // a fresh actor system has no activity actor, and the store is open
	}
	d.Activity = c
}
