package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ecsd/ecsd/agent/runtime"
)

// provision gives an awsvpc task its network: a pause container on the
// awsvpc network, whose address becomes the task's; the task's containers
// join its network namespace.
func (t *task) provision(ctx context.Context) error {
	if t.networkMode != "awsvpc" || t.pause != nil {
		return nil
	}
	if err := t.e.awsvpc.err; err != nil {
		return fmt.Errorf("ResourceInitializationError: awsvpc network unavailable: %w", err)
	}
	p, err := t.e.takePause(ctx, t)
	if err != nil {
		return fmt.Errorf("ResourceInitializationError: failed to set up the task network: %s", daemonMessage(err))
	}
	t.pause = p
	t.e.registerID(p.id, t)
	t.att = t.e.newAttachment(newUUID(), p)
	// The server created the task's ENI attachment (id, subnet) at RunTask:
	// report on that one, so the task shows one attachment, as in ECS.
	for _, a := range t.asg.Attachments {
		if a.Type != "ElasticNetworkInterface" || a.Id == "" {
			continue
		}
		t.att.id = a.Id
		for _, d := range a.Details {
			if d.Name == "subnetId" && d.Value != "" {
				t.att.subnetID = d.Value
			}
		}
		break
	}
	return nil
}

// advanceStart does the work between PENDING and ACTIVATING: pull the
// images, create the containers, start each as soon as its dependsOn
// conditions hold. done is true once every container has been started.
func (t *task) advanceStart(ctx context.Context) (done, progressed bool) {
	sctx, cancel := t.startContext(ctx)
	defer cancel()
	if !t.pulled {
		if reason := t.pull(sctx); reason != "" {
			if sctx.Err() == nil {
				t.fail(reason)
			}
			return false, true
		}
		t.pulled = true
		t.logAwslogsFallback()
		return false, true
	}
	for _, c := range createOrder(t.containers, t.byName) {
		if c.id != "" || c.exited {
			continue
		}
		if err := t.create(sctx, c); err != nil {
			if sctx.Err() == nil && t.fallBack(sctx, c, err) {
				return false, true // created again with the default runtime
			}
			if sctx.Err() == nil {
				c.reason = reasonCannotCreate + daemonMessage(err)
				t.fail(c.reason)
			}
			return false, true
		}
		progressed = true
	}
	if progressed {
		// A container may ask the metadata endpoint about its task the moment
		// it starts: show it every container that exists.
		t.setView()
	}
	if t.waitingSince.IsZero() {
		t.waitingSince = t.now()
	}
	for {
		more, all := false, true
		for _, c := range t.containers {
			if c.started || c.exited {
				continue
			}
			v, why := dependencyState(c, t.byName)
			if v == depWait && t.startTimedOut(c) {
				v, why = depNever, "dependencies were not resolved within the container's startTimeout"
			}
			switch v {
			case depWait:
				all = false
			case depNever:
				// The container can never start: it counts as stopped.
				c.exited = true
				c.reason = "DependencyError: " + why
				if c.essential {
					t.fail(c.reason)
					return false, true
				}
				more, progressed = true, true
			case depReady:
				if err := t.startContainer(sctx, c); err != nil {
					if sctx.Err() == nil && t.fallBack(sctx, c, err) {
						return false, true // created again with the default runtime
					}
					if sctx.Err() == nil {
						c.reason = reasonCannotStart + daemonMessage(err)
						t.fail(c.reason)
					}
					return false, true
				}
				more, progressed = true, true
				t.setView()
				if t.desired != StatusRunning {
					return false, true // e.g. an essential container exited at once
				}
			}
		}
		if !more {
			return all, progressed
		}
	}
}

func (t *task) startTimedOut(c *container) bool {
	st := c.def.StartTimeout
	if st == nil || *st <= 0 || t.waitingSince.IsZero() {
		return false
	}
	return t.now().Sub(t.waitingSince).Seconds() >= float64(*st)
}

// pull fetches the images of containers not yet created, following the
// configured pull behaviour. It returns "" or the reason the task fails.
// Pull times are recorded only for pulls that happen: as with the ECS agent,
// a cached image used without pulling leaves them unset.
func (t *task) pull(ctx context.Context) string {
	seen := map[string]bool{}
	for _, c := range t.containers {
		img := c.def.Image
		if c.id != "" || c.exited || img == "" || seen[img] {
			continue
		}
		seen[img] = true
		exists, err := t.e.rt.ImageExists(ctx, img)
		if err != nil {
			exists = false
		}
		switch t.e.cfg.ImagePullBehavior {
		case PullPreferCached, PullOnce:
			if exists {
				continue
			}
		}
		if t.pullStartedAt.IsZero() {
			t.pullStartedAt = t.now()
		}
		perr := t.e.rt.Pull(ctx, img, nil)
		t.pullStoppedAt = t.now()
		if perr == nil {
			continue
		}
		if ctx.Err() != nil {
			return "stopped while pulling"
		}
		if t.e.cfg.ImagePullBehavior == PullDefault && exists {
			t.log.Info("pull failed; using the cached image", "image", img, "err", perr)
			continue
		}
		msg := perr.Error()
		var pe *runtime.PullError
		if errors.As(perr, &pe) {
			msg = pe.Message
		}
		reason := reasonCannotPull + msg
		for _, o := range t.containers {
			if o.def.Image == img {
				o.reason = reason
			}
		}
		return reason
	}
	return ""
}

// specContext is what buildSpec needs of the task.
func (t *task) specContext() specContext {
	def := t.asg.Definition
	cluster := t.asg.ClusterArn
	if cluster == "" {
		cluster = t.e.cfg.ClusterArn
	}
	sc := specContext{
		taskARN:     t.arn,
		taskID:      t.id,
		cluster:     clusterName(cluster),
		clusterARN:  cluster,
		fargate:     t.fargate(),
		runtime:     t.runtime,
		family:      def.Family,
		revision:    def.Revision,
		instanceARN: t.e.cfg.InstanceArn,
		region:      t.e.cfg.Region,
		networkMode: t.networkMode,
		volumes:     def.Volumes,
		idsByName:   map[string]string{},

		awslogsEndpoint: t.e.cfg.AwslogsEndpoint,
	}
	for _, c := range t.containers {
		if c.id != "" {
			sc.idsByName[c.name] = c.id
		}
	}
	if t.pause != nil {
		sc.pauseID = t.pause.id
		if t.att != nil {
			sc.attachment = t.att.id
		}
	}
	if t.e.cfg.TMDS != nil {
		sc.tmdsBase = t.e.cfg.TMDS.BaseURL(t.networkMode)
	}
	return sc
}

func (t *task) create(ctx context.Context, c *container) error {
	spec, err := buildSpec(t.specContext(), c)
	if err != nil {
		return err
	}
	id, err := t.e.rt.Create(ctx, spec)
	if errors.Is(err, runtime.ErrConflict) {
		// The name is taken (a leftover): take another.
		c.dockerName = dockerName(t.asg.Definition.Family, t.asg.Definition.Revision, c.name)
		spec.Name = c.dockerName
		id, err = t.e.rt.Create(ctx, spec)
	}
	if err != nil {
		return err
	}
	c.id = id
	c.labels = spec.Labels
	c.mounts = spec.Mounts
	c.createdAt = t.now()
	t.e.registerID(id, t)
	return nil
}

// startContainer starts c and reads back what only the runtime knows: its
// host ports, address and start time (one inspection; no polling).
func (t *task) startContainer(ctx context.Context, c *container) error {
	if err := t.e.rt.Start(ctx, c.id); err != nil {
		return err
	}
	st, err := t.e.rt.Inspect(ctx, c.id)
	if err != nil {
		c.started, c.running = true, true
		c.startedAt = t.now()
		return nil
	}
	if c.observe(st) {
		t.exited(c)
	}
	if !c.started {
		c.started = true // it ran, however briefly
	}
	return nil
}

// daemonMessage is the innermost message of a runtime error: the daemon's
// own words, without the runtime's operation prefix.
func daemonMessage(err error) string {
	for {
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			next := u.Unwrap()
			if next == nil {
				return strings.TrimSpace(err.Error())
			}
			err = next
		case interface{ Unwrap() []error }:
			errs := u.Unwrap()
			if len(errs) == 0 {
				return strings.TrimSpace(err.Error())
			}
			err = errs[len(errs)-1]
		default:
			return strings.TrimSpace(err.Error())
		}
	}
}
