package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    respReply
		wantErr string
	}{
		{in: "+OK\r\n", want: respReply{Kind: '+', Str: []byte("OK")}},
		{in: ":42\r\n", want: respReply{Kind: ':', Int: 42}},
		{in: "$5\r\nhello\r\n", want: respReply{Kind: '$', Str: []byte("hello")}},
		{in: "$0\r\n\r\n", want: respReply{Kind: '$', Str: []byte{}}},
		{in: "$-1\r\n", want: respReply{Kind: '$', Nil: true}},
		{in: "-ERR wrong type\r\n", wantErr: "redis error reply: ERR wrong type"},
		{in: "$5\r\nhel", wantErr: "bulk string of 5 bytes"},
		{in: "$3\r\nhello\r\n", wantErr: "not followed by CRLF"},
		{in: "$x\r\n", wantErr: "not a length"},
		{in: "*1\r\n$1\r\na\r\n", wantErr: "unsupported reply type"},
		{in: "+OK\n", wantErr: "does not end in CRLF"},
		{in: "", wantErr: "read reply"},
	} {
		got, err := readReply(bufio.NewReader(strings.NewReader(tc.in)))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("readReply(%q) = %+v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got.Kind != tc.want.Kind || string(got.Str) != string(tc.want.Str) || got.Int != tc.want.Int || got.Nil != tc.want.Nil {
			t.Errorf("readReply(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	_, err := readReply(bufio.NewReader(strings.NewReader("-ERR x\r\n")))
	if !errors.Is(err, errRedisReply) {
		t.Errorf("error reply %v does not match errRedisReply", err)
	}
}

// TestRedisDoerAgainstRedisServer runs the client against Debian's
// redis-server: SETs answer +OK, GETs of a written key return its value,
// of a missing key a null bulk string.
func TestRedisDoerAgainstRedisServer(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed (Debian package redis-server)")
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	srv := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; pingRedis(addr) != nil; i++ {
		if i > 200 {
			t.Fatal("redis-server not answering PING after 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, err := dialRESP(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d := &redisDoer{conn: c, keyspace: 10, value: []byte("v64")}
	ctx := context.Background()
	for i := range int64(20) {
		if err := d.do(ctx, i); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	rep, err := c.command(ctx, []byte("GET"), []byte("key:0"))
	if err != nil || string(rep.Str) != "v64" {
		t.Errorf("GET key:0 = %+v, %v; want v64 (written by request 0)", rep, err)
	}
	if rep, err := c.command(ctx, []byte("GET"), []byte("never-written")); err != nil || !rep.Nil {
		t.Errorf("GET of a missing key = %+v, %v; want a null bulk string", rep, err)
	}
	if _, err := c.command(ctx, []byte("NOSUCHCOMMAND")); !errors.Is(err, errRedisReply) {
		t.Errorf("unknown command: %v, want an error reply", err)
	}
}
