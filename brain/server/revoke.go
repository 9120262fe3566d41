package server

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/auth"
	"github.com/sluicehq/sluice/brain/store"
	"github.com/sluicehq/sluice/brain/trace"
)

// WhoAmI names the caller's certificate identity ("none" on a plain-text
// brain).
func (b *Brain) WhoAmI(ctx context.Context, _ *connect.Request[brainv1.WhoAmIRequest]) (*connect.Response[brainv1.WhoAmIResponse], error) {
	id, ok := callerOf(ctx)
	if !ok {
		return connect.NewResponse(&brainv1.WhoAmIResponse{Kind: "none", Scope: auth.ScopeNone.String()}), nil
	}
	return connect.NewResponse(&brainv1.WhoAmIResponse{Kind: id.Kind.String(), Name: id.Name, Scope: id.Scope.String()}), nil
}

// RevokeHost writes a revocation to etcd, then refuses the host's
// certificates issued up to now from its next request on. The host's
// heartbeats stop counting, so it goes down after its TTL and its
// replicas are placed elsewhere, as for any silent host.
func (b *Brain) RevokeHost(ctx context.Context, req *connect.Request[brainv1.RevokeHostRequest]) (*connect.Response[brainv1.RevokeHostResponse], error) {
	name := req.Msg.GetName()
	if err := trace.ValidName(name); err != nil {
		return nil, invalid("name", err.Error())
	}
	by := "loopback"
	if id, ok := callerOf(ctx); ok {
		by = id.String()
	}
	r := store.Revocation{Host: name, Cutoff: b.now().UTC().Truncate(1e9), By: by}
	var batch store.Batch
	batch.Put(store.RevokedKey(name), r)
	if _, err := b.cfg.Store.Commit(ctx, &batch); err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("revoke %s: %w", name, err))
	}
	b.revoked.Set(name, r.Cutoff)
	b.mu.Lock()
	b.revocations[name] = r
	b.mu.Unlock()
	b.log.Warn("host certificates revoked", "host", name, "cutoff", r.Cutoff, "by", by)
	return connect.NewResponse(&brainv1.RevokeHostResponse{Revocation: revocationPB(name, r)}), nil
}

// ListRevocations lists the revoked hosts with their cut-offs.
func (b *Brain) ListRevocations(ctx context.Context, _ *connect.Request[brainv1.ListRevocationsRequest]) (*connect.Response[brainv1.ListRevocationsResponse], error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := &brainv1.ListRevocationsResponse{}
	for _, h := range slices.Sorted(maps.Keys(b.revocations)) {
		out.Revocations = append(out.Revocations, revocationPB(h, b.revocations[h]))
	}
	return connect.NewResponse(out), nil
}

func revocationPB(host string, r store.Revocation) *brainv1.Revocation {
	return &brainv1.Revocation{Host: host, CutoffUnixMs: r.Cutoff.UnixMilli(), By: r.By}
}
