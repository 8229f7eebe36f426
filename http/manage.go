package http

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/config"
	"github.com/mcpproxy/mcpproxy/config/clientconf"
)

// serverGone is what DELETE /api/v1/servers/{name} waits on besides the registry: the
// passthrough sessions of the server, whose connections are the sessions actor's
// (*actors.SessionsClient).
type serverGone interface {
	AwaitServerGone(ctx context.Context, server string) error
}

// addServer handles POST /api/v1/servers: one server entry, in the config's own shape.
func (s *Server) addServer(c *gin.Context) {
	data, err := ReadBody(c, maxBody)
	if err != nil {
		s.writeError(c, err)
		return
	}
	entry, errs := config.ParseServer(data)
	if len(errs) > 0 {
		s.writeError(c, actors.EntryInvalid(errs))
		return
	}
	res, err := s.opts.Backend.AddServer(c.Request.Context(), entry)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"server": res.Server})
}

// patchServer handles PATCH /api/v1/servers/{name}: a JSON merge patch of the entry.
func (s *Server) patchServer(c *gin.Context) {
	data, err := ReadBody(c, maxBody)
	if err != nil {
		s.writeError(c, err)
		return
	}
	res, err := s.opts.Backend.UpdateServer(c.Request.Context(), c.Param("name"), data)
	s.writeServer(c, res.Server, err)
}

// deleteServer handles DELETE /api/v1/servers/{name}; the answer comes once the server's
// processes and its passthrough sessions are gone.
func (s *Server) deleteServer(c *gin.Context) {
	if _, err := ReadBody(c, maxBody); err != nil {
		s.writeError(c, err)
		return
	}
	res, err := s.opts.Backend.RemoveServer(c.Request.Context(), c.Param("name"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	if g, ok := s.opts.Sessions.(serverGone); ok {
		if err := g.AwaitServerGone(c.Request.Context(), res.Server.Name); err != nil {
			s.writeError(c, err)
			return
		}
	}
	c.JSON(http.StatusOK, gin.H{"server": res.Server})
}

// importResponse is the answer of POST /api/v1/servers/import.
type importResponse struct {
	Format  string               `json:"format"`
	Added   []string             `json:"added"`
	Skipped []string             `json:"skipped"`
	Errors  []clientconf.Problem `json:"errors"`
}

// importServers handles POST /api/v1/servers/import?format=: the body is the content of
// another client's config file (format detected when not given). Every server added is
// quarantined; names in use are skipped; entries that cannot be read are listed in errors
// with the field to fix. A file that cannot be read at all is a 400.
func (s *Server) importServers(c *gin.Context) {
	format := c.Query("format")
	if format != "" && format != "auto" && !clientconf.Known(format) {
		s.writeError(c, errorf(actors.CodeInvalidArgument, "format must be one of %s, or auto", strings.Join(clientconf.Formats, ", ")))
		return
	}
	if format == "auto" || format == "" {
		format = ""
	}
	data, err := ReadBody(c, maxConfigBody)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if format == "" {
		format = clientconf.Detect(data)
	}
	parsed, err := clientconf.Parse(format, data)
	if err != nil {
		s.writeError(c, errorf(actors.CodeInvalidArgument, "cannot read the %s config: %v", format, err))
		return
	}
	out := importResponse{Format: format, Added: []string{}, Skipped: []string{}, Errors: parsed.Problems}
	if out.Errors == nil {
		out.Errors = []clientconf.Problem{}
	}
	if len(parsed.Servers) > 0 {
		res, err := s.opts.Backend.ImportServers(c.Request.Context(), parsed.Servers)
		if err != nil {
			s.writeError(c, err)
			return
		}
		out.Added, out.Skipped = res.Added, res.Skipped
	}
	c.JSON(http.StatusOK, out)
}

// logKeepAlive is how often a followed log stream sends a comment while the server is
// quiet, so that proxies and browsers keep the connection.
const logKeepAlive = 15 * time.Second

// serverLogs handles GET /api/v1/servers/{name}/logs?tail=N&follow=true: the last lines of
// the server's log as JSON, or with follow an SSE stream of them and then of each new line
// (event "log", data a LogLine), until the client goes or the server is removed.
func (s *Server) serverLogs(c *gin.Context) {
	tail := actors.DefaultLogTail
	if v, ok := c.GetQuery("tail"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > actors.MaxLogLines {
			s.writeError(c, errorf(actors.CodeInvalidArgument, "tail must be an integer from 0 to %d", actors.MaxLogLines))
			return
		}
		tail = n
	}
	follow := false
	if v, ok := c.GetQuery("follow"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.writeError(c, errorf(actors.CodeInvalidArgument, "follow must be true or false"))
			return
		}
		follow = b
	}
	name := c.Param("name")
	if !follow {
		lines, err := s.opts.Backend.Logs(c.Request.Context(), name, tail)
		if err != nil {
			s.writeError(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"server": name, "lines": lines})
		return
	}
	f, err := s.opts.Backend.FollowLogs(c.Request.Context(), name, tail)
	if err != nil {
		s.writeError(c, err)
		return
	}
	defer f.Stop()
	w := c.Writer
	setEventStreamHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	for _, l := range f.Lines {
		writeLogEvent(w, l)
	}
	w.Flush()
	keep := time.NewTicker(logKeepAlive)
	defer keep.Stop()
	for {
		select {
		case <-c.Request.Context().Done():
			return
		case <-keep.C:
			_, _ = w.WriteString(": keepalive\n\n")
		case l, ok := <-f.C:
			if !ok {
				_, _ = w.WriteString("event: end\ndata: {}\n\n")
				w.Flush()
				return
			}
			writeLogEvent(w, l)
			// Lines that arrived together go out in one write.
			for more := true; more; {
				select {
				case l, ok := <-f.C:
					if !ok {
						more = false
						break
					}
					writeLogEvent(w, l)
				default:
					more = false
				}
			}
		}
		w.Flush()
	}
}

func writeLogEvent(w gin.ResponseWriter, l actors.LogLine) {
	data, _ := json.Marshal(l) // one line: JSON escapes every newline of the text
	_, _ = w.WriteString("event: log\ndata: ")
	_, _ = w.Write(data)
	_, _ = w.WriteString("\n\n")
}
