package killer_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs/pkg/errgrpc"

	"github.com/sluicehq/sluice/agent/killer"
	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/test/containerdtest"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// clientTasks is the TaskKiller contract over a containerd client, the
// same call agent/discovery makes (kill with all=true, gRPC errors mapped
// to errdefs).
type clientTasks struct{ c *containerd.Client }

func (k clientTasks) KillTask(ctx context.Context, ns, id string, sig syscall.Signal) error {
	_, err := k.c.TaskService().Kill(namespaces.WithNamespace(ctx, ns), &tasksapi.KillRequest{ContainerID: id, Signal: uint32(sig), All: true})
	return errgrpc.ToNative(err)
}

func TestContainerdKillOfflineContainer(t *testing.T) {
	kerneltest.RequireContainerd(t)
	inst := containerdtest.Start(t)
	ctx := context.Background()
	batch := inst.RunContainer(t, ctx, "sluice-test", "batch")
	web := inst.RunContainer(t, ctx, "sluice-test", "web")
	k, err := killer.New(killer.Config{Tasks: clientTasks{inst.Client}})
	if err != nil {
		t.Fatal(err)
	}
	victim := qos.KillIntent{ID: "batch", Namespace: "sluice-test", Name: "batch", CgroupPath: batch.CgroupPath, Class: qos.ClassOffline}
	online := qos.KillIntent{ID: "web", Namespace: "sluice-test", Name: "web", CgroupPath: web.CgroupPath, Class: qos.ClassOnline}
	got := k.Apply(ctx, qos.Plan{Kills: []qos.KillIntent{online, victim}})
	if got[0].Status != qos.ResultFailed || got[1].Status != qos.ResultApplied {
		t.Fatalf("results %+v", got)
	}
	select { // liveness bound for SIGKILL, not a speed check
	case st := <-batch.Exited:
		if st.ExitCode() != 128+uint32(syscall.SIGKILL) {
			t.Errorf("batch exit status %d, want %d", st.ExitCode(), 128+syscall.SIGKILL)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("batch still running after its kill")
	}
	st, err := web.Task.Status(namespaces.WithNamespace(ctx, "sluice-test"))
	if err != nil || st.Status != containerd.Running {
		t.Errorf("online container: %+v, %v; want running", st, err)
	}
	// The victim is gone: killing it again is not a failure.
	again := k.Apply(ctx, qos.Plan{Kills: []qos.KillIntent{victim}})
	t.Logf("second kill of an exited task: %+v", again[0])
	if again[0].Status == qos.ResultFailed {
		t.Errorf("second kill: %+v", again[0])
	}
}
