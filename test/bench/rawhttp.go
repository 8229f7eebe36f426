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
	if err := c.conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return 0, 0, err
	}
	if _, err := io.WriteString(c.conn, req); err != nil {
		return 0, 0, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, 0, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 {
		return 0, 0, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, 0, fmt.Errorf("bad status line %q", line)
	}
	length, chunked := -1, false
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return status, 0, err
		}
		h := strings.TrimRight(string(line), "\r\n")
		if h == "" {
			break
		}
		k, v, _ := strings.Cut(h, ":")
		switch strings.ToLower(k) {
		case "content-length":
			length, err = strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return status, 0, fmt.Errorf("bad content-length %q", v)
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
		return status, 0, errors.New("response without length")
	}
	return status, n, err
}

func (c *rawClient) discard(n int) (int, error) {
	d, err := c.r.Discard(n)
	return d, err
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
		if _, err := c.discard(2); err != nil { // CRLF after the chunk
			return total, err
		}
	}
}
