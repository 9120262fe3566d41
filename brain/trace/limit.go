package trace

import (
	"errors"
	"fmt"
	"io"
)

// ErrLimit is wrapped when input is larger than a decoder reads.
var ErrLimit = errors.New("input over limit")

// MaxRowBytes bounds one CSV row of a v2018 trace (real rows are under
// 100 bytes); a longer one is not a trace row, whatever it is.
const MaxRowBytes = 64 << 10

// limitedReader fails, naming the limit, once more than maxBytes have been
// read or a line runs longer than maxLine bytes (0 = no line limit); it
// never reads more than one byte past either.
type limitedReader struct {
	r        io.Reader
	what     string
	maxBytes int64
	maxLine  int64
	n, line  int64
}

func newLimitedReader(r io.Reader, what string, maxBytes, maxLine int64) *limitedReader {
	return &limitedReader{r: r, what: what, maxBytes: maxBytes, maxLine: maxLine}
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n > l.maxBytes {
		return 0, fmt.Errorf("%s: %w: larger than %d bytes", l.what, ErrLimit, l.maxBytes)
	}
	if room := l.maxBytes + 1 - l.n; int64(len(p)) > room {
		p = p[:room]
	}
	k, err := l.r.Read(p)
	l.n += int64(k)
	for i, b := range p[:k] {
		if b == '\n' {
			l.line = 0
			continue
		}
		l.line++
		if l.maxLine > 0 && l.line > l.maxLine {
			return i, fmt.Errorf("%s: %w: a line longer than %d bytes", l.what, ErrLimit, l.maxLine)
		}
	}
	if l.n > l.maxBytes {
		return k, fmt.Errorf("%s: %w: larger than %d bytes", l.what, ErrLimit, l.maxBytes)
	}
	return k, err
}

// LimitReader is r failing with ErrLimit, the limit named with what, past
// maxBytes in all or a line longer than maxLine bytes (0: no line limit):
// for decoders outside this package (openb's CSV lists).
func LimitReader(r io.Reader, what string, maxBytes, maxLine int64) io.Reader {
	return newLimitedReader(r, what, maxBytes, maxLine)
}

// ReadAll reads all of r, or fails with ErrLimit, the limit named, once r
// holds more than maxBytes (reading one byte past it at most): the one
// bounded read every decoder of whole files uses.
func ReadAll(r io.Reader, maxBytes int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrLimit, maxBytes)
	}
	return data, nil
}
