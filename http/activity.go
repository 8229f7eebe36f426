package http

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/activity"
)

// ActivitySource is what the activity routes need: the activity actor's client
// (*activity.Client).
type ActivitySource interface {
	List(ctx context.Context, q activity.Query) (activity.Page, error)
	Get(ctx context.Context, id uint64) (activity.Record, error)
}

var _ ActivitySource = (*activity.Client)(nil)

type activityHandlers struct {
	s   *Server
	src ActivitySource
}

// activityError gives the activity log's errors their codes.
func activityError(err error) error {
	switch {
	case errors.Is(err, activity.ErrNotFound):
		return errorf(actors.CodeNotFound, "%v", err)
	case errors.Is(err, activity.ErrTimeout):
		return errorf(actors.CodeTimeout, "%v", err)
	case errors.Is(err, activity.ErrUnavailable):
		return errorf(actors.CodeUnavailable, "%v", err)
	}
	return err
}

// The query parameters of the activity routes; any other is refused.
var (
	activityFilterParams = []string{"server", "tool", "status", "session", "since", "until", "apikey"}
	activityListParams   = append([]string{"limit", "cursor"}, activityFilterParams...)
	activityExportParams = append([]string{"format"}, activityFilterParams...)
)

// checkParams refuses a query parameter the route does not know, naming it.
func checkParams(c *gin.Context, known []string) error {
	for name := range c.Request.URL.Query() {
		ok := false
		for _, k := range known {
			ok = ok || k == name
		}
		if !ok {
			return errorf(actors.CodeInvalidArgument, "unknown query parameter %q (known: %s)", name,
				strings.Join(known[:len(known)-1], ", "))
		}
	}
	return nil
}

// filter reads the filters common to the listing and the export.
func filter(c *gin.Context) (activity.Filter, error) {
	f := activity.Filter{Server: c.Query("server"), Tool: c.Query("tool"), Outcome: c.Query("status"), Session: c.Query("session")}
	if f.Outcome != "" {
		known := false
		for _, o := range activity.Outcomes {
			known = known || o == f.Outcome
		}
		if !known {
			return f, errorf(actors.CodeInvalidArgument, "status %q must be one of %s", f.Outcome, strings.Join(activity.Outcomes, ", "))
		}
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := c.Query(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return f, errorf(actors.CodeInvalidArgument, "%s %q must be an RFC 3339 time, such as 2026-01-02T15:04:05Z", p.name, v)
			}
			*p.dst = t
		}
	}
	return f, nil
}

type activityPage struct {
	Records []activity.Record `json:"records"`
	// Next is the cursor of the next page, absent on the last one.
	Next string `json:"next,omitempty"`
}

// list handles GET /api/v1/activity: records newest first, filtered, a page at a time.
// The cursor is the id below which the next page starts (ids only grow), so pages are
// stable while new records arrive.
func (h activityHandlers) list(c *gin.Context) {
	if err := checkParams(c, activityListParams); err != nil {
		h.s.writeError(c, err)
		return
	}
	f, err := filter(c)
	if err != nil {
		h.s.writeError(c, err)
		return
	}
	q := activity.Query{Filter: f, Limit: activity.DefaultLimit}
	if v, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > activity.MaxLimit {
			h.s.writeError(c, errorf(actors.CodeInvalidArgument, "limit must be an integer from 1 to %d", activity.MaxLimit))
			return
		}
		q.Limit = n
	}
	if v, ok := c.GetQuery("cursor"); ok {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			h.s.writeError(c, errorf(actors.CodeInvalidArgument, "cursor %q is not a cursor this API gave (the next of a page)", v))
			return
		}
		q.Before = n
	}
	page, err := h.src.List(c.Request.Context(), q)
	if err != nil {
		h.s.writeError(c, activityError(err))
		return
	}
	out := activityPage{Records: page.Records}
	if out.Records == nil {
		out.Records = []activity.Record{}
	}
	if page.Next != 0 {
		out.Next = strconv.FormatUint(page.Next, 10)
	}
	c.JSON(http.StatusOK, out)
}

// get handles GET /api/v1/activity/{id}.
func (h activityHandlers) get(c *gin.Context) {
	id, err := strconv.ParseUint(c.Param("id"), 10, 64)
	if err != nil || id == 0 {
		h.s.writeError(c, errorf(actors.CodeInvalidArgument, "id %q must be a positive integer", c.Param("id")))
		return
	}
	rec, err := h.src.Get(c.Request.Context(), id)
	if err != nil {
		h.s.writeError(c, activityError(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"record": rec})
}

// csvHeader is the export's CSV columns; arguments is the JSON text.
var csvHeader = []string{"id", "started_at", "duration_ms", "endpoint", "server", "tool", "method", "name",
	"session_id", "client_name", "client_version", "credential", "outcome", "reason", "result_bytes",
	"truncated", "error", "arguments"}

func csvRow(r activity.Record) []string {
	return []string{strconv.FormatUint(r.ID, 10), r.StartedAt.Format(time.RFC3339Nano),
		strconv.FormatFloat(r.DurationMS, 'f', -1, 64), r.Endpoint, r.Server, r.Tool, r.Method, r.Name,
		r.SessionID, r.Client.Name, r.Client.Version, r.Credential, r.Outcome, r.Reason,
		strconv.Itoa(r.ResultBytes), strconv.FormatBool(r.Truncated), r.Error, string(r.Arguments)}
}

// exportPage is how many records the export asks for at a time.
const exportPage = activity.MaxLimit

// export handles GET /api/v1/activity/export?format=ndjson|csv: every record that matches
// the filters, newest first, streamed a page at a time (memory stays one page).
func (h activityHandlers) export(c *gin.Context) {
	if err := checkParams(c, activityExportParams); err != nil {
		h.s.writeError(c, err)
		return
	}
	format := c.DefaultQuery("format", "ndjson")
	if format != "ndjson" && format != "csv" {
		h.s.writeError(c, errorf(actors.CodeInvalidArgument, "format %q must be ndjson or csv", format))
		return
	}
	f, err := filter(c)
	if err != nil {
		h.s.writeError(c, err)
		return
	}
	ctx := c.Request.Context()
	page, err := h.src.List(ctx, activity.Query{Filter: f, Limit: exportPage})
	if err != nil {
		h.s.writeError(c, activityError(err))
		return
	}
	w := c.Writer
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.Header().Set("Content-Disposition", `attachment; filename="activity.`+format+`"`)
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	if format == "csv" {
		_ = cw.Write(csvHeader)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for {
		for _, r := range page.Records {
			if format == "csv" {
				_ = cw.Write(csvRow(r))
			} else if enc.Encode(r) != nil {
				return
			}
		}
		cw.Flush()
		w.Flush()
		if page.Next == 0 || ctx.Err() != nil {
			return
		}
		if page, err = h.src.List(ctx, activity.Query{Filter: f, Before: page.Next, Limit: exportPage}); err != nil {
			// The status is sent: the client sees a cut stream (no last newline for NDJSON).
			h.s.log.Warn("activity export stopped", "err", err)
			return
		}
	}
}
