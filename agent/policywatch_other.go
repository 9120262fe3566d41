//go:build !linux

package agent

import (
	"context"
	"errors"
)

// policyWatch is inotify-based; elsewhere the policy reloads on SIGHUP only.
type policyWatch struct{}

func newPolicyWatch(string) (*policyWatch, error) {
	return nil, errors.New("watch policy: needs Linux inotify; SIGHUP reloads")
}

func (*policyWatch) run(context.Context, chan<- struct{}) error { return nil }
