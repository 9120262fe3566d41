package server

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
)

const rollJob = "version: 1\napps:\n  - {name: api, cpu: 1, memory: 1Gi, image: %s}\nrequests:\n  - {app: api, count: %d, update: {timeout: 5s}}\n"

func getJob(t *testing.T, tb *testBrain, name string) *brainv1.Job {
	t.Helper()
	r, err := tb.operator().GetJob(context.Background(), connect.NewRequest(&brainv1.GetJobRequest{Name: name}))
	if err != nil {
		t.Fatal(err)
	}
	return r.Msg.GetJob()
}

// heartbeatAll lets every agent's containers come up and report so.
func heartbeatAll(t *testing.T, agents []*simAgent) {
	t.Helper()
	for _, a := range agents {
		a.settle()
		if err := a.heartbeat(context.Background(), 4000, 8*gib); err != nil {
			t.Fatal(err)
		}
	}
}

// rollToEnd reports containers up, batch after batch, until the job's
// rollout is done with every replica running; each round must replace
// at least one replica.
func rollToEnd(t *testing.T, tb *testBrain, agents []*simAgent, job string, count int) {
	t.Helper()
	for round := 0; ; round++ {
		if round > 2*count {
			t.Fatalf("rollout of %s not done after %d rounds: %+v", job, round, getJob(t, tb, job).GetRollout())
		}
		agentsAgree(t, tb, agents)
		before := getJob(t, tb, job).GetRollout()
		heartbeatAll(t, agents)
		if before.GetOutdated() == 0 {
			eventually(t, "the last batch reported running", func() bool {
				r := getJob(t, tb, job).GetRollout()
				return r.GetState() == "done" && int(r.GetRunning()) == count
			})
			return
		}
		eventually(t, "the rollout replaces the next batch", func() bool {
			return getJob(t, tb, job).GetRollout().GetOutdated() < before.GetOutdated()
		})
	}
}

func TestRollingUpdateKeepsAllButOneRunning(t *testing.T) {
	tb := startBrain(t, t.TempDir(), newClock(), testLiveness)
	agents := fleet(t, tb, 3)
	submit(t, tb, []byte(fmt.Sprintf(rollJob, "busybox:1", 3)))
	rollToEnd(t, tb, agents, "api", 3)

	// Count the job's containers that are up after every update any agent
	// applies.
	var mu sync.Mutex
	fewest, images := 3, map[string]bool{}
	for _, a := range agents {
		a.onApply = func() {
			mu.Lock()
			defer mu.Unlock()
			up := 0
			for _, b := range agents {
				for _, img := range b.startedOf("api") {
					up++
					images[img] = true
				}
			}
			fewest = min(fewest, up)
		}
	}
	resp := submit(t, tb, []byte(fmt.Sprintf(rollJob, "busybox:2", 3)))
	if r := resp.GetJobs()[0].GetRollout(); r.GetState() != "rolling" || r.GetOutdated() != 2 {
		t.Fatalf("right after the update: %+v, want rolling with 2 outdated (one replaced)", r)
	}
	rollToEnd(t, tb, agents, "api", 3)
	mu.Lock()
	if fewest < 2 {
		t.Errorf("at one point %d replicas were up, want never fewer than 2", fewest)
	}
	if !images["busybox:1"] || !images["busybox:2"] {
		t.Errorf("images seen up %v: want both while rolling", images)
	}
	mu.Unlock()
	_, st := stored(t, tb)
	n := 0
	for _, tg := range st.Targets {
		for _, c := range tg.Containers {
			n++
			if c.Image != "busybox:2" {
				t.Errorf("container %s runs %s after the rollout", c.ID, c.Image)
			}
		}
	}
	for _, p := range st.Placements {
		if p.Spec != nil {
			t.Errorf("placement %s still pinned to an earlier spec", p.ID())
		}
	}
	if n != 3 {
		t.Errorf("%d containers after the rollout, want 3", n)
	}
}

func TestRollingUpdatePausesWhenABatchDoesNotComeUp(t *testing.T) {
	clk := newClock()
	tb := startBrain(t, t.TempDir(), clk, testLiveness)
	agents := fleet(t, tb, 3)
	for _, a := range agents {
		a.broken["busybox:bad"] = true
	}
	submit(t, tb, []byte(fmt.Sprintf(rollJob, "busybox:1", 3)))
	rollToEnd(t, tb, agents, "api", 3)

	submit(t, tb, []byte(fmt.Sprintf(rollJob, "busybox:bad", 3)))
	agentsAgree(t, tb, agents)
	heartbeatAll(t, agents)
	clk.Advance(6 * time.Second) // past the job's 5s update timeout, within the hosts' TTL
	heartbeatAll(t, agents)
	eventually(t, "the rollout pauses", func() bool { return getJob(t, tb, "api").GetRollout().GetState() == "paused" })
	r := getJob(t, tb, "api").GetRollout()
	if r.GetOutdated() != 2 || !strings.Contains(r.GetReason(), "not running within 5s") {
		t.Fatalf("paused rollout %+v: want 2 replicas kept on the old spec and the replica that did not come up named", r)
	}
	up := 0
	for _, a := range agents {
		for id, img := range a.startedOf("api") {
			up++
			if img != "busybox:1" {
				t.Errorf("%s up on %s", id, img)
			}
		}
	}
	if up != 2 {
		t.Errorf("%d replicas up while paused, want the 2 on the old spec", up)
	}
	if _, st := stored(t, tb); !st.Rollouts["api"].Paused {
		t.Errorf("the pause is not stored: %+v", st.Rollouts)
	}

	// Time passing and heartbeats change nothing while paused...
	clk.Advance(6 * time.Second)
	heartbeatAll(t, agents)
	if r := getJob(t, tb, "api").GetRollout(); r.GetState() != "paused" || r.GetOutdated() != 2 {
		t.Fatalf("paused rollout moved on: %+v", r)
	}
	// ... a new spec rolls out (the replica that never came up first, at
	// no cost) and clears the pause.
	submit(t, tb, []byte(fmt.Sprintf(rollJob, "busybox:3", 3)))
	rollToEnd(t, tb, agents, "api", 3)
	if _, st := stored(t, tb); len(st.Rollouts) != 0 {
		t.Errorf("a finished rollout left %+v", st.Rollouts)
	}
}

func TestRollBackKeepsReplicasAlreadyOnTheSpec(t *testing.T) {
	tb := startBrain(t, t.TempDir(), newClock(), testLiveness)
	agents := fleet(t, tb, 3)
	submit(t, tb, []byte(fmt.Sprintf(rollJob, "busybox:1", 3)))
	rollToEnd(t, tb, agents, "api", 3)
	// busybox:2 replaces one replica, then the job goes back to busybox:1:
	// the two never replaced stay as they are, only the one is replaced.
	submit(t, tb, []byte(fmt.Sprintf(rollJob, "busybox:2", 3)))
	agentsAgree(t, tb, agents)
	resp := submit(t, tb, []byte(fmt.Sprintf(rollJob, "busybox:1", 3)))
	if r := resp.GetJobs()[0].GetRollout(); r.GetOutdated() > 1 {
		t.Fatalf("rolling back: %+v, want at most the one replaced replica outdated", r)
	}
	rollToEnd(t, tb, agents, "api", 3)
}

func TestScaleUpPlacesAndScaleDownRemoves(t *testing.T) {
	tb := startBrain(t, t.TempDir(), newClock(), testLiveness)
	agents := fleet(t, tb, 3)
	submit(t, tb, []byte(fmt.Sprintf(rollJob, "busybox:1", 2)))
	agentsAgree(t, tb, agents)
	_, st := stored(t, tb)
	rev := st.Revision
	// Unchanged: idempotent, nothing written.
	submit(t, tb, []byte(fmt.Sprintf(rollJob, "busybox:1", 2)))
	if _, st := stored(t, tb); st.Revision != rev {
		t.Errorf("resubmitting the same job wrote to etcd: revision %d -> %d", rev, st.Revision)
	}

	submit(t, tb, []byte(fmt.Sprintf(rollJob, "busybox:1", 5)))
	p, _ := stored(t, tb)
	for i := range 5 {
		if p[fmt.Sprintf("api-%d", i)] == "" {
			t.Fatalf("scaled up to 5: %v", p)
		}
	}
	agentsAgree(t, tb, agents)
	if r := getJob(t, tb, "api").GetRollout(); r.GetOutdated() != 0 {
		t.Errorf("scaling replaced replicas: %+v", r)
	}

	submit(t, tb, []byte(fmt.Sprintf(rollJob, "busybox:1", 1)))
	p, st = stored(t, tb)
	if len(p) != 1 || p["api-0"] == "" {
		t.Fatalf("scaled down to 1: %v", p)
	}
	agentsAgree(t, tb, agents)
	n := 0
	for _, tg := range st.Targets {
		n += len(tg.Containers)
	}
	if n != 1 {
		t.Errorf("%d containers targeted after scaling down to 1", n)
	}
}

// A restarted brain resumes a rollout from what etcd holds: the replicas
// still on the old spec stay until their turn, none is replaced before
// the agents report again.
func TestRollingUpdateResumesAfterABrainRestart(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	tb := startBrain(t, dir, clk, testLiveness)
	agents := fleet(t, tb, 3)
	submit(t, tb, []byte(fmt.Sprintf(rollJob, "busybox:1", 3)))
	rollToEnd(t, tb, agents, "api", 3)
	submit(t, tb, []byte(fmt.Sprintf(rollJob, "busybox:2", 3)))
	agentsAgree(t, tb, agents)
	for _, a := range agents {
		a.stopFollowing()
	}
	tb.stop()

	tb2 := startBrain(t, dir, clk, testLiveness)
	if r := getJob(t, tb2, "api").GetRollout(); r.GetState() != "rolling" || r.GetOutdated() != 2 {
		t.Fatalf("after a restart: %+v, want rolling with the 2 replicas not yet replaced", r)
	}
	tb2.brain.poke()
	time.Sleep(1500 * time.Millisecond) // a tick's pass: it must not replace without reports
	if r := getJob(t, tb2, "api").GetRollout(); r.GetOutdated() != 2 {
		t.Fatalf("a restarted brain replaced replicas before hearing from the agents: %+v", r)
	}
	for _, a := range agents {
		a.client = newSimAgent(t, tb2.url, a.name, a.nodeID, nil).client
		a.follow()
	}
	// Their first reports (the versions they hold) are what the brain
	// waited for.
	heartbeatAll(t, agents)
	rollToEnd(t, tb2, agents, "api", 3)
}
