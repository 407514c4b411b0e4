package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ecsd/ecsd/agent/runtime"
	"github.com/ecsd/ecsd/agent/tmds"
)

// pauseStopTimeout: the pause image exits on SIGTERM at once.
const pauseStopTimeout = 5 * time.Second

// takePause gives task t a running pause container on the awsvpc network:
// one from the warm pool if there is one, else a new one.
func (e *Engine) takePause(ctx context.Context, t *task) (*container, error) {
	if e.pool != nil {
		if p := e.pool.take(); p != nil {
			return p, nil
		}
	}
	return e.createPause(ctx, t)
}

// createPause creates and starts a pause container: for task t (labelled as
// its own), or for the pool when t is nil. Pooled ones cannot be relabelled
// when a task takes them; the task's containers name their pause container
// in a label instead (labelPauseID), which is what re-attachment follows.
func (e *Engine) createPause(ctx context.Context, t *task) (*container, error) {
	labels := map[string]string{LabelManaged: "true", LabelInstance: e.cfg.InstanceArn, labelKind: kindPause}
	var name string
	if t != nil {
		def := t.asg.Definition
		name = dockerName(def.Family, def.Revision, tmds.PauseName)
		labels[LabelTaskARN] = t.arn
		labels[LabelContainer] = tmds.PauseName
		labels[LabelFamily] = def.Family
		labels[LabelRevision] = strconv.Itoa(int(def.Revision))
	} else {
		name = "ecsd-pause-" + randHex(10)
		labels[labelPool] = "true"
	}
	spec := runtime.ContainerSpec{
		Name:        name,
		Image:       e.cfg.PauseImage,
		Labels:      labels,
		Network:     &runtime.NetworkAttachment{Name: e.awsvpc.name},
		StopTimeout: pauseStopTimeout,
	}
	id, err := e.rt.Create(ctx, spec)
	if errors.Is(err, runtime.ErrNotFound) {
		// The pause image is missing: pull it once and retry.
		if perr := e.rt.Pull(ctx, e.cfg.PauseImage, nil); perr != nil {
			return nil, perr
		}
		id, err = e.rt.Create(ctx, spec)
	}
	if err != nil {
		return nil, err
	}
	if err := e.rt.Start(ctx, id); err != nil {
		_ = e.rt.Remove(context.WithoutCancel(ctx), id, true)
		return nil, err
	}
	st, err := e.rt.Inspect(ctx, id)
	if err != nil {
		_ = e.rt.Remove(context.WithoutCancel(ctx), id, true)
		return nil, err
	}
	p := pauseContainer(st, e.awsvpc.name)
	if p.ipv4 == "" || !p.running {
		_ = e.rt.Remove(context.WithoutCancel(ctx), id, true)
		return nil, fmt.Errorf("pause container %s has no address on %s", name, e.awsvpc.name)
	}
	return p, nil
}

// pauseContainer is the engine's record of a pause container.
func pauseContainer(st runtime.ContainerState, network string) *container {
	p := &container{
		name:       tmds.PauseName,
		pause:      true,
		essential:  true,
		haveDef:    true,
		dockerName: st.Name,
		stopAfter:  pauseStopTimeout,
		health:     HealthUnknown,
	}
	p.observe(st)
	if n, ok := st.Networks[network]; ok {
		p.ipv4, p.mac, p.gateway, p.prefixLen = n.IPv4, n.MAC, n.Gateway, n.PrefixLen
	}
	return p
}

// newAttachment describes the task's network as an ECS ENI attachment.
func (e *Engine) newAttachment(id string, p *container) *attachment {
	h := sha256.Sum256([]byte(id))
	return &attachment{
		id:       id,
		status:   "ATTACHED",
		ip:       p.ipv4,
		mac:      p.mac,
		dnsName:  privateDNSName(p.ipv4, e.cfg.Region),
		eniID:    "eni-" + hex.EncodeToString(h[:])[:17],
		subnetID: e.awsvpc.subnetID,
	}
}

// privateDNSName is EC2's name for a private address: ip-a-b-c-d.ec2.internal
// in us-east-1, ip-a-b-c-d.<region>.compute.internal elsewhere.
func privateDNSName(ip, region string) string {
	if ip == "" {
		return ""
	}
	host := "ip-" + strings.ReplaceAll(ip, ".", "-")
	if region == "" || region == "us-east-1" {
		return host + ".ec2.internal"
	}
	return host + "." + region + ".compute.internal"
}

// pausePool keeps a few pause containers created, started and addressed, so
// an awsvpc task costs one container start, not two, on its way to RUNNING.
// A pool container that dies is dropped; one taken is replaced in the
// background.
type pausePool struct {
	e    *Engine
	size int
	wake chan struct{}

	mu    sync.Mutex
	ready []*container
}

func newPausePool(e *Engine, size int) *pausePool {
	return &pausePool{e: e, size: size, wake: make(chan struct{}, 1)}
}

func (p *pausePool) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// take returns a ready pause container, or nil. It does not start a refill:
// the taker kicks the pool once its task has started, so replacing the pause
// container does not compete with the task's own start for the daemon.
func (p *pausePool) take() *container {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.ready) > 0 {
		c := p.ready[0]
		p.ready = p.ready[1:]
		if c.running {
			return c
		}
	}
	return nil
}

// add puts a running pause container in the pool if it has room.
func (p *pausePool) add(c *container) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ready) >= p.size {
		return false
	}
	p.ready = append(p.ready, c)
	return true
}

// drop forgets a pool container that died; the filler replaces it.
func (p *pausePool) drop(id string) {
	found := false
	p.mu.Lock()
	for i, c := range p.ready {
		if c.id == id {
			p.ready = append(p.ready[:i:i], p.ready[i+1:]...)
			found = true
			break
		}
	}
	p.mu.Unlock()
	if found {
		// Only one still in the pool: a task may have just taken it.
		go func() { _ = p.e.rt.Remove(context.Background(), id, true) }()
		p.kick()
	}
}

func (p *pausePool) short() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready) < p.size
}

// fill keeps the pool full until ctx ends.
func (p *pausePool) fill(ctx context.Context) {
	for {
		for ctx.Err() == nil && p.short() {
			c, err := p.e.createPause(ctx, nil)
			if err != nil {
				if ctx.Err() == nil {
					p.e.log.Warn("pause pool: creating a pause container failed", "err", err)
					select {
					case <-ctx.Done():
					case <-time.After(5 * time.Second):
					}
				}
				break
			}
			if !p.add(c) {
				_ = p.e.rt.Remove(context.WithoutCancel(ctx), c.id, true)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
	}
}
