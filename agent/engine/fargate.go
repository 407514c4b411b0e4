package engine

import (
	"context"
	"strings"
	"time"
)

// FARGATE tasks, which only the agents of the managed Fargate pool are given.
// They are awsvpc tasks whose app containers run under Config.FargateRuntime
// (gVisor's runsc when the daemon offers it), joined to the network namespace
// of a pause container that runs with the daemon's default runtime: on this
// kind of host runsc works only with the network stack of the namespace it is
// put in (runtimeArgs --network=host), which the pause container owns.
//
// A container that cannot be created or started under that runtime because
// of the runtime itself is retried with the default runtime (runc): the
// task's containers not yet started are removed and created again. A daemon
// without the runtime turns it off for the engine; any other such failure
// falls back for that task only (a workload gVisor cannot run says nothing of
// the next one). The first fallback is logged as a warning, later ones at
// info.

// launchTypeFargate is the launch type of tasks placed on the pool (FARGATE
// and FARGATE_SPOT capacity providers alike).
const launchTypeFargate = "FARGATE"

// fargate reports whether the task runs on the Fargate pool.
func (t *task) fargate() bool { return t.asg.LaunchType == launchTypeFargate }

// fargateRuntime is the runtime new app containers of FARGATE tasks get.
func (e *Engine) fargateRuntime() string {
	if e.cfg.FargateRuntime == "" || e.runtimeOff.Load() {
		return ""
	}
	return e.cfg.FargateRuntime
}

// runtimeFailure reports whether err comes from the OCI runtime rather than
// from the image or the request: worth one more try under the default.
func runtimeFailure(err error) bool {
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "runtime") || strings.Contains(m, "runsc")
}

// runtimeMissing reports whether the daemon does not know the runtime.
func runtimeMissing(err error) bool {
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "unknown runtime") || strings.Contains(m, "invalid runtime name")
}

// fallBack handles container c of the task failing to be created or started
// with err. When the task's runtime is to blame, the containers not yet
// started are removed (they are created again with the default runtime) and
// fallBack reports true: the caller retries.
func (t *task) fallBack(ctx context.Context, c *container, err error) bool {
	if t.runtime == "" || !runtimeFailure(err) {
		return false
	}
	name := t.runtime
	t.runtime = ""
	msg := daemonMessage(err)
	switch {
	case runtimeMissing(err) && t.e.runtimeOff.CompareAndSwap(false, true):
		t.e.fallbackLogged.Store(true)
		t.e.log.Error("the container runtime for Fargate tasks is not offered by the daemon: Fargate tasks run with the default runtime (runc) from now on; register it with dockerd (scripts/setup.sh does) and restart the agent to use it",
			"runtime", name, "err", msg)
	case t.e.fallbackLogged.CompareAndSwap(false, true):
		t.e.log.Warn("a Fargate task's container failed under its runtime: the task runs with the default runtime (runc) instead, without that sandbox's isolation (later fallbacks are logged at info)",
			"runtime", name, "task", t.arn, "container", c.name, "err", msg)
	default:
		t.log.Info("container failed under its runtime; the task runs with the default runtime (runc)", "runtime", name, "container", c.name, "err", msg)
	}
	for _, o := range t.containers {
		if o.id == "" || o.started {
			continue
		}
		if rerr := t.e.rt.Remove(context.WithoutCancel(ctx), o.id, true); rerr != nil {
			t.log.Warn("removing a container to create it again failed", "container", o.name, "id", o.id, "err", rerr)
		}
		o.id, o.labels, o.mounts, o.createdAt = "", nil, nil, time.Time{}
		o.running, o.exited, o.reason = false, false, ""
	}
	return true
}

// stopTimeoutOf is how long container c is given between SIGTERM and SIGKILL:
// the assignment's stop timeout when it sets one (a Spot interruption's
// warning), else the container's own.
func (t *task) stopTimeoutOf(c *container) time.Duration {
	if t.asg.StopTimeout > 0 {
		return t.asg.StopTimeout
	}
	return c.stopAfter
}
