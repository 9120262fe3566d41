package server

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/trace"
)

// Container output stays on its host (the agent keeps it, rotated); the
// brain fetches it on demand: a LogRequest rides the host's target stream
// and the agent answers with PutLogs. Nothing of it is stored.
const (
	defaultLogBytes = 64 << 10
	maxLogBytes     = 1 << 20
	// logAnswerWait is how long a Logs call waits for the agents.
	logAnswerWait = 10 * time.Second
)

// logWait is a Logs call waiting for one host's answer.
type logWait struct {
	host   string
	max    int64
	answer chan *brainv1.PutLogsRequest
}

// Logs fetches the tail of a job's replicas' output from their agents.
func (b *Brain) Logs(ctx context.Context, req *connect.Request[brainv1.LogsRequest]) (*connect.Response[brainv1.LogsResponse], error) {
	m := req.Msg
	limit := m.GetMaxBytes()
	switch {
	case limit == 0:
		limit = defaultLogBytes
	case limit < 0 || limit > maxLogBytes:
		return nil, invalid("max_bytes", fmt.Sprintf("%d is outside [1, %d]", limit, maxLogBytes))
	}
	b.mu.Lock()
	j, err := b.job(m.GetJob())
	if err != nil {
		b.mu.Unlock()
		return nil, err
	}
	hostOf := map[string]string{}
	for _, p := range b.placementsOf(j.Name) {
		hostOf[p.ID()] = p.Host
	}
	var ids []string
	for i := range j.Count {
		id := trace.ReplicaID(j.Name, i)
		if m.GetReplica() == "" || m.GetReplica() == id {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		b.mu.Unlock()
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("replica %q: not a replica of job %s (0..%d)", m.GetReplica(), j.Name, j.Count-1))
	}
	out := &brainv1.LogsResponse{}
	waits := map[string]*logWait{} // by request ID
	reqOf := map[string]string{}   // replica -> request ID
	for _, id := range ids {
		rl := &brainv1.ReplicaLog{Replica: id, Host: hostOf[id]}
		out.Logs = append(out.Logs, rl)
		l := b.live[rl.Host]
		if rl.Host == "" || l == nil {
			rl.Error = "not placed"
			continue
		}
		b.logSeq++
		rid := strconv.FormatUint(b.logSeq, 10)
		w := &logWait{host: rl.Host, max: limit, answer: make(chan *brainv1.PutLogsRequest, 1)}
		b.logWaits[rid], waits[rid], reqOf[id] = w, w, rid
		l.logReqs = append(l.logReqs, &brainv1.LogRequest{RequestId: rid, Container: id, MaxBytes: limit})
		l.wake(nil)
	}
	b.mu.Unlock()
	defer func() {
		// Requests a stream never carried (no agent connected) go too.
		b.mu.Lock()
		defer b.mu.Unlock()
		for rid, w := range waits {
			delete(b.logWaits, rid)
			if l := b.live[w.host]; l != nil {
				l.logReqs = slices.DeleteFunc(l.logReqs, func(r *brainv1.LogRequest) bool { return r.GetRequestId() == rid })
			}
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, logAnswerWait)
	defer cancel()
	for _, rl := range out.Logs {
		rid, ok := reqOf[rl.Replica]
		if !ok {
			continue
		}
		select {
		case a := <-waits[rid].answer:
			rl.Data, rl.Truncated, rl.Error = a.GetData(), a.GetTruncated(), a.GetError()
		case <-ctx.Done():
			rl.Error = fmt.Sprintf("host %s did not answer within %s (is its agent connected?)", rl.Host, logAnswerWait)
		}
	}
	return connect.NewResponse(out), nil
}

// PutLogs takes an agent's answer to a LogRequest.
func (b *Brain) PutLogs(ctx context.Context, req *connect.Request[brainv1.PutLogsRequest]) (*connect.Response[brainv1.PutLogsResponse], error) {
	m := req.Msg
	b.mu.Lock()
	defer b.mu.Unlock()
	h, err := b.known(m.GetNodeId(), m.GetName())
	if err != nil {
		return nil, err
	}
	w, ok := b.logWaits[m.GetRequestId()]
	switch {
	case !ok:
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("log request %q: none waiting (answered, or given up)", m.GetRequestId()))
	case w.host != h.Name:
		return nil, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("log request %q: asked of host %s, not %s", m.GetRequestId(), w.host, h.Name))
	case int64(len(m.GetData())) > w.max:
		return nil, invalid("data", fmt.Sprintf("%d bytes, %d were asked for", len(m.GetData()), w.max))
	}
	delete(b.logWaits, m.GetRequestId())
	w.answer <- m
	return connect.NewResponse(&brainv1.PutLogsResponse{}), nil
}
