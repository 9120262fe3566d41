package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// respConn is a minimal Redis client: one connection, one command at a
// time (RESP2 over TCP), enough for GET and SET. A maintained client
// would bring pools, retries and pipelining the benchmark must not have:
// each request is exactly one round trip on a connection of its own worker.
type respConn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func dialRESP(addr string) (*respConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", addr, err)
	}
	return &respConn{c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}, nil
}

func (rc *respConn) Close() error { return rc.c.Close() }

// command sends args as one RESP array of bulk strings and reads the reply.
func (rc *respConn) command(ctx context.Context, args ...[]byte) (respReply, error) {
	if d, ok := ctx.Deadline(); ok {
		_ = rc.c.SetDeadline(d)
	}
	rc.w.WriteByte('*')
	rc.w.WriteString(strconv.Itoa(len(args)))
	rc.w.WriteString("\r\n")
	for _, a := range args {
		rc.w.WriteByte('$')
		rc.w.WriteString(strconv.Itoa(len(a)))
		rc.w.WriteString("\r\n")
		rc.w.Write(a)
		rc.w.WriteString("\r\n")
	}
	if err := rc.w.Flush(); err != nil {
		return respReply{}, fmt.Errorf("redis: send: %w", err)
	}
	return readReply(rc.r)
}

// respReply is a parsed reply: simple string, integer or bulk string
// (Nil for a null bulk string). Error replies are returned as errors.
type respReply struct {
	Kind byte // '+', ':' or '$'
	Str  []byte
	Int  int64
	Nil  bool
}

var errRedisReply = errors.New("redis error reply")

// readReply reads one RESP2 reply. Arrays are not needed by GET and SET
// and are rejected, as is anything malformed, with what was wrong.
func readReply(r *bufio.Reader) (respReply, error) {
	line, err := readLine(r)
	if err != nil {
		return respReply{}, err
	}
	if len(line) == 0 {
		return respReply{}, errors.New("redis: empty reply line")
	}
	kind, rest := line[0], line[1:]
	switch kind {
	case '+':
		return respReply{Kind: kind, Str: rest}, nil
	case '-':
		return respReply{}, fmt.Errorf("%w: %s", errRedisReply, rest)
	case ':':
		n, err := strconv.ParseInt(string(rest), 10, 64)
		if err != nil {
			return respReply{}, fmt.Errorf("redis: integer reply %q: %w", rest, err)
		}
		return respReply{Kind: kind, Int: n}, nil
	case '$':
		n, err := strconv.Atoi(string(rest))
		if err != nil || n < -1 {
			return respReply{}, fmt.Errorf("redis: bulk length %q is not a length", rest)
		}
		if n == -1 {
			return respReply{Kind: kind, Nil: true}, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return respReply{}, fmt.Errorf("redis: bulk string of %d bytes: %w", n, err)
		}
		if buf[n] != '\r' || buf[n+1] != '\n' {
			return respReply{}, fmt.Errorf("redis: bulk string of %d bytes not followed by CRLF", n)
		}
		return respReply{Kind: kind, Str: buf[:n]}, nil
	default:
		return respReply{}, fmt.Errorf("redis: unsupported reply type %q", kind)
	}
}

func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return nil, fmt.Errorf("redis: read reply: %w", err)
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("redis: reply line %q does not end in CRLF", line)
	}
	return line[:len(line)-2], nil
}

// redisDoer sends GETs and SETs alternately (even index SET, odd GET) to
// keys spread over a keyspace, values of a fixed size.
type redisDoer struct {
	conn     *respConn
	keyspace int64
	value    []byte
	key      []byte
}

func (d *redisDoer) do(ctx context.Context, i int64) error {
	// A multiplicative hash spreads consecutive indices over the keyspace.
	k := (uint64(i) * 0x9E3779B97F4A7C15) % uint64(d.keyspace)
	d.key = strconv.AppendUint(append(d.key[:0], "key:"...), k, 10)
	if i%2 == 0 {
		rep, err := d.conn.command(ctx, []byte("SET"), d.key, d.value)
		if err != nil {
			return err
		}
		if rep.Kind != '+' || string(rep.Str) != "OK" {
			return fmt.Errorf("redis: SET answered %c%q, want +OK", rep.Kind, rep.Str)
		}
		return nil
	}
	rep, err := d.conn.command(ctx, []byte("GET"), d.key)
	if err != nil {
		return err
	}
	if rep.Kind != '$' {
		return fmt.Errorf("redis: GET answered type %c, want a bulk string", rep.Kind)
	}
	return nil
}
