package actors

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/mcpproxy/mcpproxy/actors/store"
)

// Diagnostics is the answer of GET /api/v1/diagnostics: runtime figures for troubleshooting.
type Diagnostics struct {
	// ServersInError are the servers in error or backoff, with their errors and since when.
	ServersInError []ServerInError `json:"servers_in_error"`
	Goroutines     int             `json:"goroutines"`
	Memory         Memory          `json:"memory"`
	Actors         ActorCounts     `json:"actors"`
	// Events are the /events hub's counters: subscribers and dropped events.
	Events HubStats   `json:"events"`
	Store  StoreStats `json:"store"`
	// Uptime is in seconds.
	Uptime int64 `json:"uptime"`
}

// ServerInError is one server that is not working.
type ServerInError struct {
	Name       string `json:"name"`
	State      State  `json:"state"`
	LastError  string `json:"last_error"`
	RetryCount int    `json:"retry_count"`
	// Since is when the server entered error or backoff.
	Since *time.Time `json:"since"`
}

// Memory figures, in bytes. RSS is the resident set size from /proc/self/status (0 where
// that is not available).
type Memory struct {
	HeapAlloc uint64 `json:"heap_alloc"`
	HeapInuse uint64 `json:"heap_inuse"`
	HeapSys   uint64 `json:"heap_sys"`
	Sys       uint64 `json:"sys"`
	RSS       uint64 `json:"rss"`
	NumGC     uint32 `json:"num_gc"`
}

// ActorCounts counts live actors: all of them (including pending request futures), and the
// upstream actors (one per server that is not disabled).
type ActorCounts struct {
	Total     int `json:"total"`
	Upstreams int `json:"upstreams"`
}

// StoreStats describe the pebble store.
type StoreStats struct {
	// DiskSize is the bytes the store uses on disk.
	DiskSize int64 `json:"disk_size"`
}

// Diagnostics gathers the figures of GET /api/v1/diagnostics: the registry's servers in
// error, the hub's counters, the store's size, the actor system's live PIDs and the Go
// runtime's memory. started is when the daemon started.
func (c *Client) Diagnostics(ctx context.Context, hub *HubClient, st *store.Store, started time.Time) (Diagnostics, error) {
	servers, err := c.Servers(ctx)
	if err != nil {
		return Diagnostics{}, err
	}
	events, err := hub.Stats(ctx)
	if err != nil {
		return Diagnostics{}, err
	}
	out := Diagnostics{
		ServersInError: []ServerInError{},
		Goroutines:     runtime.NumGoroutine(),
		Events:         events,
		Store:          StoreStats{DiskSize: st.DiskSize()},
		Uptime:         int64(time.Since(started).Seconds()),
	}
	for _, s := range servers {
		if s.State != StateDisabled {
			out.Actors.Upstreams++
		}
		if s.State == StateError || s.State == StateBackoff {
			out.ServersInError = append(out.ServersInError, ServerInError{
				Name: s.Name, State: s.State, LastError: s.LastError, RetryCount: s.RetryCount, Since: s.ErrorSince,
			})
		}
	}
	for _, bucket := range c.sys.ProcessRegistry.LocalPIDs.LocalPIDs {
		out.Actors.Total += bucket.Count()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	out.Memory = Memory{
		HeapAlloc: ms.HeapAlloc, HeapInuse: ms.HeapInuse, HeapSys: ms.HeapSys, Sys: ms.Sys,
		NumGC: ms.NumGC, RSS: rss(),
	}
	return out, nil
}

// rss reads the resident set size from /proc/self/status (VmRSS, in kB); 0 when unknown.
func rss() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			if f := strings.Fields(v); len(f) >= 1 {
				if kb, err := strconv.ParseUint(f[0], 10, 64); err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}
