package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
)

// FuzzAgentProtocol feeds arbitrary wire bytes, decoded as each agent
// message, to the handlers of a live brain: nothing may panic, every
// refusal is a Connect error with a client-side code, and a host's state
// never claims an applied version beyond its target.
func FuzzAgentProtocol(f *testing.F) {
	tb := startBrain(f, f.TempDir(), newClock(), testLiveness)
	ctx := context.Background()
	reg := &brainv1.RegisterRequest{NodeId: "n0", Name: "host-0", Capacity: &brainv1.Resources{Amounts: map[string]int64{"cpu": 1000, "memory": 1 << 30}}}
	if _, err := tb.brain.Register(ctx, connect.NewRequest(reg)); err != nil {
		f.Fatal(err)
	}
	for _, m := range []proto.Message{
		reg,
		&brainv1.HeartbeatRequest{NodeId: "n0", Name: "host-0", LentCpuMilli: 500, AppliedVersion: 0},
		&brainv1.HeartbeatRequest{NodeId: "n1", Name: "host-0", AppliedVersion: 7},
		&brainv1.AckRequest{NodeId: "n0", Name: "host-0", AppliedVersion: 3, Results: []*brainv1.ItemResult{{Id: "x", Result: "maybe"}}},
		&brainv1.RegisterRequest{NodeId: "n2", Name: "host-0", Capacity: &brainv1.Resources{Amounts: map[string]int64{"cpu": -1}}},
		&brainv1.PutLogsRequest{NodeId: "n0", Name: "host-0", RequestId: "1", Data: []byte("out")},
		&brainv1.LogsRequest{Job: "web", Replica: "web-0", MaxBytes: 100},
	} {
		data, _ := proto.Marshal(m)
		for kind := range 5 {
			f.Add(uint8(kind), data)
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var err error
		switch kind % 5 {
		case 0:
			m := &brainv1.RegisterRequest{}
			if proto.Unmarshal(data, m) != nil {
				return
			}
			_, err = tb.brain.Register(ctx, connect.NewRequest(m))
		case 1:
			m := &brainv1.HeartbeatRequest{}
			if proto.Unmarshal(data, m) != nil {
				return
			}
			_, err = tb.brain.Heartbeat(ctx, connect.NewRequest(m))
		case 2:
			m := &brainv1.AckRequest{}
			if proto.Unmarshal(data, m) != nil {
				return
			}
			_, err = tb.brain.Ack(ctx, connect.NewRequest(m))
		case 3:
			m := &brainv1.PutLogsRequest{}
			if proto.Unmarshal(data, m) != nil {
				return
			}
			_, err = tb.brain.PutLogs(ctx, connect.NewRequest(m))
		case 4:
			m := &brainv1.LogsRequest{}
			if proto.Unmarshal(data, m) != nil {
				return
			}
			_, err = tb.brain.Logs(ctx, connect.NewRequest(m))
		}
		if err != nil {
			var ce *connect.Error
			if !errors.As(err, &ce) {
				t.Fatalf("not a connect error: %v", err)
			}
			switch ce.Code() {
			case connect.CodeInvalidArgument, connect.CodeNotFound, connect.CodePermissionDenied, connect.CodeAlreadyExists:
			default:
				t.Fatalf("unexpected code %v: %v", ce.Code(), err)
			}
		}
		tb.brain.mu.Lock()
		defer tb.brain.mu.Unlock()
		for name, l := range tb.brain.live {
			if l.applied > tb.brain.st.Targets[name].Version {
				t.Fatalf("host %s: applied %d beyond its target %d", name, l.applied, tb.brain.st.Targets[name].Version)
			}
		}
	})
}

// FuzzSubmitJobs feeds arbitrary job files to the operator API: a refusal
// is InvalidArgument and commits nothing.
func FuzzSubmitJobs(f *testing.F) {
	tb := startBrain(f, f.TempDir(), newClock(), testLiveness)
	f.Add([]byte("version: 1\napps:\n  - {name: a, cpu: 1, memory: 1Gi, image: b}\nrequests:\n  - {app: a, count: 1}\n"))
	f.Add([]byte("version: 1\napps:\n  - {name: a, cpu: 1, memory: 1Gi}\nrequests:\n  - {app: a, count: 1}\n"))
	f.Add([]byte("{version: 1, apps: [{name: a, image: x, class: offline}], requests: [{app: a, count: 2, name: Z}]}"))
	f.Fuzz(func(t *testing.T, file []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tb.brain.mu.Lock()
		before := len(tb.brain.st.Jobs)
		tb.brain.mu.Unlock()
		_, err := tb.brain.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: file}))
		if err == nil {
			return
		}
		if connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("refusal with code %v: %v", connect.CodeOf(err), err)
		}
		tb.brain.mu.Lock()
		after := len(tb.brain.st.Jobs)
		tb.brain.mu.Unlock()
		if after != before {
			t.Fatalf("a refused file changed the jobs: %d -> %d", before, after)
		}
	})
}
