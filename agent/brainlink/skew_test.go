package brainlink

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/server/servertest"
)

// previousProtocol is the agent protocol one release back: agent.proto
// before leader epochs (no epoch in TargetsResponse, RegisterResponse,
// HeartbeatResponse). It is built from the current descriptor with those
// fields taken out, which is exactly the shape the previous release's
// generated code decodes and encodes.
func previousProtocol(t *testing.T) protoreflect.FileDescriptor {
	t.Helper()
	fdp := protodesc.ToFileDescriptorProto(brainv1.File_v1_agent_proto)
	fdp.Name = proto.String("v1/agent_previous.proto")
	removed := 0
	for _, m := range fdp.MessageType {
		var keep []*descriptorpb.FieldDescriptorProto
		for _, f := range m.Field {
			if f.GetName() == "epoch" {
				removed++
				continue
			}
			keep = append(keep, f)
		}
		m.Field = keep
	}
	if removed != 3 {
		t.Fatalf("took %d epoch fields out, want 3: the protocol changed again; update this test's idea of the previous release", removed)
	}
	fd, err := protodesc.NewFile(fdp, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

func oldMessage(fd protoreflect.FileDescriptor, name string) *dynamicpb.Message {
	return dynamicpb.NewMessage(fd.Messages().ByName(protoreflect.Name(name)))
}

// envelope frames one Connect streaming message.
func envelope(flags byte, data []byte) []byte {
	out := make([]byte, 5, 5+len(data))
	out[0] = flags
	binary.BigEndian.PutUint32(out[1:], uint32(len(data)))
	return append(out, data...)
}

// An agent of the previous release against the current brain: it speaks
// Connect's binary protocol with the previous message shapes; the brain's
// answers (which carry epochs) decode in the old shape with every field
// it knows intact, the epoch kept aside as an unknown field.
func TestPreviousAgentAgainstCurrentBrain(t *testing.T) {
	fd := previousProtocol(t)
	b := servertest.StartHA(t)
	post := func(method string, req proto.Message, resp proto.Message) {
		t.Helper()
		body, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		r, err := http.Post(b.URL+"/sluice.brain.v1.AgentService/"+method, "application/proto", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		data, _ := io.ReadAll(r.Body)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s %s", method, r.Status, data)
		}
		if err := proto.Unmarshal(data, resp); err != nil {
			t.Fatalf("%s: decode in the previous shape: %v", method, err)
		}
	}
	reg := oldMessage(fd, "RegisterRequest")
	reg.Set(reg.Descriptor().Fields().ByName("node_id"), protoreflect.ValueOfString("old-1"))
	reg.Set(reg.Descriptor().Fields().ByName("name"), protoreflect.ValueOfString("old-host"))
	capMsg := oldMessage(fd, "Resources")
	amounts := capMsg.Mutable(capMsg.Descriptor().Fields().ByName("amounts")).Map()
	amounts.Set(protoreflect.ValueOfString("cpu").MapKey(), protoreflect.ValueOfInt64(8000))
	amounts.Set(protoreflect.ValueOfString("memory").MapKey(), protoreflect.ValueOfInt64(16<<30))
	reg.Set(reg.Descriptor().Fields().ByName("capacity"), protoreflect.ValueOfMessage(capMsg))
	regResp := oldMessage(fd, "RegisterResponse")
	post("Register", reg, regResp)
	if iv := regResp.Get(regResp.Descriptor().Fields().ByName("heartbeat_interval_ms")).Int(); iv <= 0 {
		t.Fatalf("register answer in the previous shape: interval %d", iv)
	}
	if len(regResp.GetUnknown()) == 0 {
		t.Fatal("the current brain sent no epoch: this test would not notice the skew it is about")
	}
	hb := oldMessage(fd, "HeartbeatRequest")
	hb.Set(hb.Descriptor().Fields().ByName("node_id"), protoreflect.ValueOfString("old-1"))
	hb.Set(hb.Descriptor().Fields().ByName("name"), protoreflect.ValueOfString("old-host"))
	hb.Set(hb.Descriptor().Fields().ByName("lent_cpu_milli"), protoreflect.ValueOfInt64(4000))
	hb.Set(hb.Descriptor().Fields().ByName("lent_memory_bytes"), protoreflect.ValueOfInt64(8<<30))
	post("Heartbeat", hb, oldMessage(fd, "HeartbeatResponse"))

	// A job lands on the old agent's host; its target stream, decoded in
	// the previous shape, carries it.
	if _, err := submitExample(b.URL); err != nil {
		t.Fatal(err)
	}
	tr := oldMessage(fd, "TargetsRequest")
	tr.Set(tr.Descriptor().Fields().ByName("node_id"), protoreflect.ValueOfString("old-1"))
	tr.Set(tr.Descriptor().Fields().ByName("name"), protoreflect.ValueOfString("old-host"))
	body, _ := proto.Marshal(tr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.URL+"/sluice.brain.v1.AgentService/Targets", bytes.NewReader(envelope(0, body)))
	req.Header.Set("Content-Type", "application/connect+proto")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var head [5]byte
	if _, err := io.ReadFull(r.Body, head[:]); err != nil {
		t.Fatalf("targets stream: %v", err)
	}
	msg := make([]byte, binary.BigEndian.Uint32(head[1:]))
	if _, err := io.ReadFull(r.Body, msg); err != nil || head[0] != 0 {
		t.Fatalf("targets stream: flags %d, %v", head[0], err)
	}
	upd := oldMessage(fd, "TargetsResponse")
	if err := proto.Unmarshal(msg, upd); err != nil {
		t.Fatalf("decode a target in the previous shape: %v", err)
	}
	f := upd.Descriptor().Fields()
	if !upd.Get(f.ByName("full")).Bool() || upd.Get(f.ByName("version")).Uint() == 0 || upd.Get(f.ByName("upsert")).List().Len() == 0 {
		t.Fatalf("target in the previous shape: %v", upd)
	}
	first := upd.Get(f.ByName("upsert")).List().Get(0).Message()
	if id := first.Get(first.Descriptor().Fields().ByName("id")).String(); id == "" {
		t.Fatalf("container without an id in the previous shape: %v", first)
	}
	if len(upd.GetUnknown()) == 0 {
		t.Fatal("the epoch did not travel as an unknown field")
	}
}

func submitExample(url string) (*http.Response, error) {
	file := "version: 1\napps:\n  - {name: skew, cpu: 100m, memory: 64Mi, image: busybox}\nrequests:\n  - {app: skew, count: 1}\n"
	req := &brainv1.SubmitJobsRequest{File: []byte(file)}
	body, _ := proto.Marshal(req)
	r, err := http.Post(url+"/sluice.brain.v1.OperatorService/SubmitJobs", "application/proto", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(r.Body)
		return r, fmt.Errorf("submit: %s %s", r.Status, data)
	}
	return r, nil
}

// The current agent against a brain of the previous release: a Connect
// server that encodes its answers in the previous shapes (no epochs). The
// link registers, heartbeats, takes the target by versions alone and
// acknowledges it.
func TestCurrentAgentAgainstPreviousBrain(t *testing.T) {
	fd := previousProtocol(t)
	unary := func(name string, set func(m *dynamicpb.Message)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			m := oldMessage(fd, name)
			set(m)
			data, _ := proto.Marshal(m)
			w.Header().Set("Content-Type", "application/proto")
			w.Write(data)
		}
	}
	interval := func(m *dynamicpb.Message) {
		m.Set(m.Descriptor().Fields().ByName("heartbeat_interval_ms"), protoreflect.ValueOfInt64(200))
	}
	acked := make(chan struct{}, 16)
	mux := http.NewServeMux()
	mux.Handle("/sluice.brain.v1.AgentService/Register", unary("RegisterResponse", interval))
	mux.Handle("/sluice.brain.v1.AgentService/Heartbeat", unary("HeartbeatResponse", interval))
	mux.Handle("/sluice.brain.v1.AgentService/Ack", unary("AckResponse", func(*dynamicpb.Message) { acked <- struct{}{} }))
	mux.HandleFunc("/sluice.brain.v1.AgentService/Targets", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		m := oldMessage(fd, "TargetsResponse")
		f := m.Descriptor().Fields()
		m.Set(f.ByName("version"), protoreflect.ValueOfUint64(7))
		m.Set(f.ByName("full"), protoreflect.ValueOfBool(true))
		c := oldMessage(fd, "Container")
		c.Set(c.Descriptor().Fields().ByName("id"), protoreflect.ValueOfString("web-0"))
		c.Set(c.Descriptor().Fields().ByName("image"), protoreflect.ValueOfString("busybox"))
		c.Set(c.Descriptor().Fields().ByName("class"), protoreflect.ValueOfString("online"))
		m.Mutable(f.ByName("upsert")).List().Append(protoreflect.ValueOfMessage(c))
		data, _ := proto.Marshal(m)
		w.Header().Set("Content-Type", "application/connect+proto")
		w.Write(envelope(0, data))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	link, err := New(Config{BrainURL: srv.URL, StateDir: t.TempDir(), HostName: "new-agent",
		Registration: Registration{Capacity: map[string]int64{"cpu": 1000, "memory": 1 << 30}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- link.Run(ctx, func() Report { return Report{} }) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the previous brain's target", func() bool { return link.Effective().Version == 7 })
	tg := link.Effective()
	if len(tg.Containers) != 1 || tg.Containers[0].ID != "web-0" || tg.Epoch != 0 {
		t.Fatalf("target from the previous brain: %+v", tg)
	}
	if err := link.Applied(ctx, 7, []ItemResult{{ID: "web-0", Result: "applied"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-acked:
	case <-time.After(10 * time.Second):
		t.Fatal("the previous brain never heard the acknowledgement")
	}
	if st := link.Status(); st.LastError != "" || st.Epoch != 0 || st.RefusedStale != 0 {
		t.Fatalf("status against the previous brain: %+v", st)
	}
}
