package docker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"

	"github.com/ecsd/ecsd/agent/runtime"
)

// eventActions are the container events the engine cares about. Docker sends
// health changes as "health_status: healthy"; its filter matches the prefix.
var eventActions = []string{
	runtime.EventCreate, runtime.EventStart, runtime.EventDie, runtime.EventOOM,
	runtime.EventHealthStatus, runtime.EventDestroy,
}

// attributes Docker adds to a container event's labels.
var eventAttributes = map[string]bool{"name": true, "image": true, "exitCode": true, "signal": true, "execDuration": true}

// Events streams container events of containers carrying labels. It has no
// timeout: it lives as long as ctx.
func (r *Runtime) Events(ctx context.Context, labels map[string]string, since time.Time) (<-chan runtime.Event, <-chan error) {
	f := labelFilters(labels)
	f.Add("type", string(events.ContainerEventType))
	for _, a := range eventActions {
		f.Add("event", a)
	}
	opts := events.ListOptions{Filters: f}
	if !since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())
	}
	msgs, errs := r.cli.Events(ctx, opts)

	out := make(chan runtime.Event, 64)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		for {
			select {
			case m := <-msgs:
				ev, ok := eventFrom(m)
				if !ok {
					continue
				}
				select {
				case out <- ev:
				case <-ctx.Done():
					errc <- ctx.Err()
					return
				}
			case err := <-errs:
				if err == nil {
					err = ctx.Err()
				}
				errc <- classify("docker events", err)
				return
			}
		}
	}()
	return out, errc
}

// eventFrom maps a Docker event; ok is false for ones the engine ignores.
func eventFrom(m events.Message) (runtime.Event, bool) {
	if m.Type != events.ContainerEventType {
		return runtime.Event{}, false
	}
	action, detail, _ := strings.Cut(string(m.Action), ":")
	ev := runtime.Event{
		ContainerID: m.Actor.ID,
		Action:      action,
		Name:        m.Actor.Attributes["name"],
		Image:       m.Actor.Attributes["image"],
		Time:        time.Unix(0, m.TimeNano),
	}
	if m.TimeNano == 0 {
		ev.Time = time.Unix(m.Time, 0)
	}
	switch action {
	case runtime.EventHealthStatus:
		ev.Health = strings.TrimSpace(detail)
	case runtime.EventDie:
		ev.ExitCode, _ = strconv.Atoi(m.Actor.Attributes["exitCode"])
	case runtime.EventCreate, runtime.EventStart, runtime.EventOOM, runtime.EventDestroy:
	default:
		return runtime.Event{}, false
	}
	for k, v := range m.Actor.Attributes {
		if eventAttributes[k] {
			continue
		}
		if ev.Labels == nil {
			ev.Labels = map[string]string{}
		}
		ev.Labels[k] = v
	}
	return ev, true
}
