package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// rawClient is one keep-alive HTTP/1.1 connection that sends GET requests and reads the
// answers with as little work as possible, so that on a 2-core machine the load generator
// takes less CPU from the daemon than net/http's client would. It understands exactly what
// net/http servers send: Content-Length or chunked bodies.
type rawClient struct {
	addr string
	conn net.Conn
	r    *bufio.Reader
	keep bool   // collect the body of the current answer
	body []byte // the collected body
}

func dialRaw(addr string) (*rawClient, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &rawClient{addr: addr, conn: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

func (c *rawClient) Close() error { return c.conn.Close() }

// get sends GET path with the bench key and returns the status and the body length.
func (c *rawClient) get(path string) (status, n int, err error) {
	req := "GET " + path + " HTTP/1.1\r\nHost: " + c.addr + "\r\nX-API-Key: " + benchKey + "\r\n\r\n"
	status, _, n, err = c.roundTrip(req, nil, false)
	return status, n, err
}

// post sends POST path with the extra header lines ("Name: value\r\n" each) and body, and
// returns the status, the response headers (lower-case names) and the body.
func (c *rawClient) post(path, headers string, body []byte) (int, map[string]string, []byte, error) {
	req := "POST " + path + " HTTP/1.1\r\nHost: " + c.addr + "\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n" + headers + "\r\n"
	c.body = c.body[:0]
	status, hdr, _, err := c.roundTrip(req, body, true)
	return status, hdr, c.body, err
}

// roundTrip writes one request and reads its answer; with keep the body is collected in
// c.body, else discarded.
func (c *rawClient) roundTrip(req string, body []byte, keep bool) (status int, hdr map[string]string, n int, err error) {
	if err := c.conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return 0, nil, 0, err
	}
	c.keep = keep
	if len(body) > 0 {
		req += string(body)
	}
	if _, err := io.WriteString(c.conn, req); err != nil {
		return 0, nil, 0, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, nil, 0, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 {
		return 0, nil, 0, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, 0, fmt.Errorf("bad status line %q", line)
	}
	length, chunked := -1, false
	if keep {
		hdr = map[string]string{}
	}
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return status, hdr, 0, err
		}
		h := strings.TrimRight(string(line), "\r\n")
		if h == "" {
			break
		}
		k, v, _ := strings.Cut(h, ":")
		k, v = strings.ToLower(k), strings.TrimSpace(v)
		if hdr != nil {
			hdr[k] = v
		}
		switch k {
		case "content-length":
			length, err = strconv.Atoi(v)
			if err != nil {
				return status, hdr, 0, fmt.Errorf("bad content-length %q", v)
			}
		case "transfer-encoding":
			chunked = strings.Contains(strings.ToLower(v), "chunked")
		}
	}
	switch {
	case chunked:
		n, err = c.readChunked()
	case length >= 0:
		n, err = c.discard(length)
	default:
		return status, hdr, 0, errors.New("response without length")
	}
	return status, hdr, n, err
}

// discard skips n bytes of body, or appends them to c.body when the caller keeps it.
func (c *rawClient) discard(n int) (int, error) {
	if !c.keep {
		return c.r.Discard(n)
	}
	start := len(c.body)
	c.body = append(c.body, make([]byte, n)...)
	return io.ReadFull(c.r, c.body[start:])
}

func (c *rawClient) readChunked() (int, error) {
	total := 0
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return total, err
		}
		size, err := strconv.ParseInt(strings.TrimSpace(strings.SplitN(string(line), ";", 2)[0]), 16, 64)
		if err != nil {
			return total, fmt.Errorf("bad chunk size %q", line)
		}
		if size == 0 {
			// Trailers (none from net/http) end with an empty line.
			for {
				l, err := c.r.ReadSlice('\n')
				if err != nil {
					return total, err
				}
				if strings.TrimRight(string(l), "\r\n") == "" {
					return total, nil
				}
			}
		}
		if _, err := c.discard(int(size)); err != nil {
			return total, err
		}
		total += int(size)
		if _, err := c.r.Discard(2); err != nil { // CRLF after the chunk
			return total, err
		}
	}
}
