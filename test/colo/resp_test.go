package main

import (
	"bufio"
	"errors"
	"strings"
	"testing"
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
