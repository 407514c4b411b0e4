package nodegroup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/provisioner"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// instance is a group's registered container instance as a pass sees it.
type instance struct {
	key string
	rev int64
	ci  *resource.ContainerInstance
}

// groupView is what one pass knows about a group's cluster.
type groupView struct {
	// instances by node id (the live one when a node re-registered).
	instances map[string]instance
	// tasks counts the not-STOPPED tasks per instance id.
	tasks map[string]int
	// provider is the ACTIVE capacity provider backed by the group ("" if none).
	provider string
}

func look(snap *cache.Snapshot, g *resource.NodeGroup) groupView {
	v := groupView{instances: map[string]instance{}, tasks: map[string]int{}}
	scope := g.Scope
	snap.Walk(scope.KindPrefix(resource.KindContainerInstance, g.Cluster), func(e *cache.Entry) bool {
		ci, ok := e.Obj.(*resource.ContainerInstance)
		if !ok || ci.NodeGroup != g.Name || ci.NodeID == "" || ci.Status == resource.InstanceInactive {
			return true
		}
		if cur, ok := v.instances[ci.NodeID]; ok && cur.ci.Status == resource.InstanceActive {
			return true
		}
		v.instances[ci.NodeID] = instance{key: e.Key, rev: e.Rev, ci: ci}
		return true
	})
	snap.Walk(scope.KindPrefix(resource.KindTask, g.Cluster), func(e *cache.Entry) bool {
		t, ok := e.Obj.(*resource.Task)
		if ok && t.InstanceID != "" && t.InstanceCluster == "" && t.LastStatus != "STOPPED" {
			v.tasks[t.InstanceID]++
		}
		return true
	})
	snap.Walk(scope.KindPrefix(resource.KindCapacityProvider), func(e *cache.Entry) bool {
		p, ok := e.Obj.(*resource.CapacityProvider)
		if ok && p.NodeGroup == g.Name && string(p.Status) == "ACTIVE" {
			v.provider = p.Name
			return false
		}
		return true
	})
	return v
}

// reconcileGroup plans one group, commits the plan, then starts the
// provisioner calls it implies.
func (c *Controller) reconcileGroup(ctx context.Context, snap *cache.Snapshot, e *cache.Entry) error {
	cur := e.Obj.(*resource.NodeGroup)
	now := c.cfg.Now()
	v := look(snap, cur)
	g := clone(cur)
	changed := false
	deleting := g.Status == resource.NodeGroupDeleting

	// Nodes whose agents registered are in service.
	for i := range g.Nodes {
		n := &g.Nodes[i]
		inst, ok := v.instances[n.ID]
		if !ok || n.State == resource.NodeTerminating {
			continue
		}
		if n.State == resource.NodePending || n.ContainerInstanceArn != inst.ci.ContainerInstanceArn {
			n.State = resource.NodeInService
			n.ContainerInstanceArn = inst.ci.ContainerInstanceArn
			n.LastError = ""
			changed = true
		}
	}

	// A group being deleted goes once its last node has.
	if deleting && len(g.Nodes) == 0 {
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		defer cancel()
		if _, err := c.cfg.Store.Txn(wctx, store.Delete(e.Key, e.Rev)); err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
		c.log.Info("node group deleted", "group", g.Name)
		c.noteUnmet(e.Key, "", "")
		return nil
	}

	// Pending nodes whose launch failed (after the retry delay) or whose
	// agent never registered are given up and replaced.
	for i := range g.Nodes {
		n := &g.Nodes[i]
		if n.State != resource.NodePending || c.busy(nodeKey(e.Key, n.ID)) {
			continue
		}
		failed := n.LastError != "" && now.Sub(n.LaunchedAt) >= c.cfg.RetryDelay
		late := now.Sub(n.LaunchedAt) >= c.cfg.LaunchTimeout
		if failed || late {
			if late && n.LastError == "" {
				n.LastError = fmt.Sprintf("its agent did not register within %s", c.cfg.LaunchTimeout)
			}
			n.State = resource.NodeTerminating
			changed = true
			c.log.Warn("replacing node", "group", g.Name, "node", n.ID, "reason", n.LastError)
		}
	}

	// In-service nodes whose agent has not been heard from for HealthGrace
	// are dead machines (crashed, or local agents lost with a server
	// restart): replaced like an Auto Scaling group replaces an unhealthy
	// instance, whatever they were running (it is gone with them).
	for i := range g.Nodes {
		n := &g.Nodes[i]
		inst, ok := v.instances[n.ID]
		if n.State != resource.NodeInService || !ok || inst.ci.SecretHash == "" || c.busy(nodeKey(e.Key, n.ID)) {
			continue
		}
		if p, ok := peek[resource.Presence](snap, g.Scope.PresenceKey(g.Cluster, inst.ci.ID)); ok && now.Sub(p.LastHeartbeat) >= c.cfg.HealthGrace {
			n.State = resource.NodeTerminating
			n.LastError = fmt.Sprintf("its agent has not been heard from since %s", p.LastHeartbeat.UTC().Format(time.RFC3339))
			changed = true
			c.log.Warn("replacing unhealthy node", "group", g.Name, "node", n.ID, "reason", n.LastError)
		}
	}

	var launch []resource.Node
	var drain []store.Op
	active := 0
	for _, n := range g.Nodes {
		if n.State != resource.NodeTerminating {
			active++
		}
	}
	switch {
	case active < g.Desired && !deleting:
		next := max(g.NextNode, 1)
		for range g.Desired - active {
			n := resource.Node{ID: fmt.Sprintf("%s-%d", g.Name, next), State: resource.NodePending,
				AvailabilityZone: pickZone(g), LaunchedAt: now}
			next++
			g.Nodes = append(g.Nodes, n)
			launch = append(launch, n)
		}
		g.NextNode = next
		changed = true
		c.noteUnmet(e.Key, "", "")
	case active > g.Desired:
		victims, blocked := c.pickVictims(e.Key, g, v, active-g.Desired)
		for _, i := range victims {
			n := &g.Nodes[i]
			n.State = resource.NodeTerminating
			changed = true
			// Drain its instance in the same transaction, conditioned on the
			// revision judged idle: a task placed on it since fails the write.
			if inst, ok := v.instances[n.ID]; ok && inst.ci.Status == resource.InstanceActive {
				ci := clone(inst.ci)
				ci.Status = resource.InstanceDraining
				drain = append(drain, store.Update(inst.key, resource.Encode(ci), inst.rev))
			}
		}
		if blocked > 0 {
			c.noteUnmet(e.Key, "node group cannot scale in to its desired count: the remaining nodes run tasks, are protected from scale-in or are still launching",
				fmt.Sprintf("%d/%d/%d", g.Desired, active, blocked),
				"group", g.Name, "desired", g.Desired, "nodes", active, "kept", blocked)
		} else {
			c.noteUnmet(e.Key, "", "")
		}
	default:
		c.noteUnmet(e.Key, "", "")
	}

	if changed {
		ops := append([]store.Op{store.Update(e.Key, resource.Encode(g), e.Rev)}, drain...)
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		_, err := c.cfg.Store.Txn(wctx, ops...)
		cancel()
		if errors.Is(err, store.ErrConflict) {
			// Someone else changed the group or an instance: judged again next pass.
			c.poke()
			return nil
		}
		if err != nil {
			return err
		}
		if len(launch) > 0 {
			c.log.Info("node group scaling out", "group", g.Name, "desired", g.Desired, "launching", len(launch))
		}
	}

	// Provisioner calls, only for what is now committed.
	for _, n := range launch {
		if c.claim(nodeKey(e.Key, n.ID), now) {
			c.async(ctx, func() { c.launch(ctx, e.Key, g, n) })
		}
	}
	for _, n := range g.Nodes {
		if n.State == resource.NodeTerminating && c.claim(nodeKey(e.Key, n.ID), now) {
			c.async(ctx, func() { c.terminate(ctx, e.Key, g, n) })
		}
	}

	// In-service instances join the group's capacity provider.
	if v.provider != "" && len(drain) == 0 {
		for _, n := range g.Nodes {
			inst, ok := v.instances[n.ID]
			if n.State != resource.NodeInService || !ok || inst.ci.CapacityProviderName != "" {
				continue
			}
			ci := clone(inst.ci)
			ci.CapacityProviderName = v.provider
			wctx, cancel := context.WithTimeout(ctx, writeTimeout)
			_, err := c.cfg.Store.Txn(wctx, store.Update(inst.key, resource.Encode(ci), inst.rev))
			cancel()
			if err != nil && !errors.Is(err, store.ErrConflict) {
				return err
			}
		}
	}
	return nil
}

// pickZone is the template zone with the fewest live nodes (ties: template
// order), so nodes spread evenly and scale-in keeps them balanced.
func pickZone(g *resource.NodeGroup) string {
	zones := g.Template.AvailabilityZones
	if len(zones) == 0 {
		return g.Scope.Region + "a"
	}
	count := map[string]int{}
	for _, n := range g.Nodes {
		if n.State != resource.NodeTerminating {
			count[n.AvailabilityZone]++
		}
	}
	best := zones[0]
	for _, z := range zones[1:] {
		if count[z] < count[best] {
			best = z
		}
	}
	return best
}

// pickVictims chooses up to excess nodes to remove: Pending ones first
// (failed, then newest), then in-service nodes that run no task and are not
// protected from scale-in, from the zone with the most nodes, newest first.
// A node running tasks is never chosen unless the group is force-deleted. It
// returns the indexes chosen and how many more were wanted but not allowed.
func (c *Controller) pickVictims(groupKey string, g *resource.NodeGroup, v groupView, excess int) ([]int, int) {
	force := g.Status == resource.NodeGroupDeleting && g.ForceDelete
	var pending, idle []int
	for i, n := range g.Nodes {
		switch n.State {
		case resource.NodePending:
			if !c.busy(nodeKey(groupKey, n.ID)) {
				pending = append(pending, i)
			}
		case resource.NodeInService:
			inst, registered := v.instances[n.ID]
			if force {
				idle = append(idle, i)
				continue
			}
			if n.ProtectedFromScaleIn || (registered && v.tasks[inst.ci.ID] > 0) {
				continue
			}
			idle = append(idle, i)
		}
	}
	sort.SliceStable(pending, func(a, b int) bool {
		na, nb := g.Nodes[pending[a]], g.Nodes[pending[b]]
		if (na.LastError != "") != (nb.LastError != "") {
			return na.LastError != ""
		}
		return na.LaunchedAt.After(nb.LaunchedAt)
	})
	zoneCount := map[string]int{}
	for _, n := range g.Nodes {
		if n.State != resource.NodeTerminating {
			zoneCount[n.AvailabilityZone]++
		}
	}
	var out []int
	out = append(out, pending[:min(len(pending), excess)]...)
	for len(out) < excess && len(idle) > 0 {
		// The zone with the most live nodes gives up its newest idle node.
		best := -1
		for j, i := range idle {
			if best < 0 {
				best = j
				continue
			}
			n, b := g.Nodes[i], g.Nodes[idle[best]]
			if zoneCount[n.AvailabilityZone] > zoneCount[b.AvailabilityZone] ||
				(zoneCount[n.AvailabilityZone] == zoneCount[b.AvailabilityZone] && n.LaunchedAt.After(b.LaunchedAt)) {
				best = j
			}
		}
		i := idle[best]
		idle = slices.Delete(idle, best, best+1)
		zoneCount[g.Nodes[i].AvailabilityZone]--
		out = append(out, i)
	}
	return out, excess - len(out)
}

// launch asks the provisioner for a node's machine and records the outcome.
func (c *Controller) launch(ctx context.Context, groupKey string, g *resource.NodeGroup, n resource.Node) {
	key := nodeKey(groupKey, n.ID)
	lctx, cancel := context.WithTimeout(ctx, c.cfg.LaunchTimeout)
	providerID, err := c.cfg.Provisioner.Launch(lctx, provisioner.LaunchRequest{
		Group: g.Name, NodeID: n.ID,
		Cluster: g.Scope.ClusterARN(g.Cluster), Account: g.Scope.Account, Region: g.Scope.Region,
		ServerURL: c.cfg.ServerURL, JoinToken: c.cfg.JoinToken,
		InstanceType: g.Template.InstanceType, CPU: g.Template.CPU, Memory: g.Template.Memory,
		AvailabilityZone: n.AvailabilityZone, Attributes: g.Template.Attributes,
	})
	cancel()
	if err != nil {
		c.log.Warn("node launch failed", "group", g.Name, "node", n.ID, "err", err)
	} else {
		c.log.Info("node launched", "group", g.Name, "node", n.ID, "provider_id", providerID)
	}
	orphan := false
	werr := c.updateGroup(ctx, groupKey, func(cur *resource.NodeGroup) bool {
		i := nodeIndex(cur, n.ID)
		if i < 0 {
			orphan = err == nil
			return false
		}
		node := &cur.Nodes[i]
		if err != nil {
			node.LastError = "launch: " + err.Error()
		} else {
			node.ProviderID = providerID
			if node.State == resource.NodePending {
				node.LastError = ""
			}
		}
		// The launch's moment counts from its answer: the retry delay and the
		// launch timeout start now.
		node.LaunchedAt = c.cfg.Now()
		return true
	})
	if werr != nil {
		c.log.Warn("recording node launch", "group", g.Name, "node", n.ID, "err", werr)
	}
	if orphan {
		// The node left the record while launching (its group was deleted):
		// its machine must not outlive it.
		tctx, cancel := context.WithTimeout(ctx, c.cfg.TerminateTimeout)
		_ = c.cfg.Provisioner.Terminate(tctx, provisioner.TerminateRequest{Group: g.Name, NodeID: n.ID, ProviderID: providerID})
		cancel()
	}
	c.release(key, err != nil)
}

// terminate removes a Terminating node: its machine, then its container
// instance, then its entry in the group.
func (c *Controller) terminate(ctx context.Context, groupKey string, g *resource.NodeGroup, n resource.Node) {
	key := nodeKey(groupKey, n.ID)
	tctx, cancel := context.WithTimeout(ctx, c.cfg.TerminateTimeout)
	err := c.cfg.Provisioner.Terminate(tctx, provisioner.TerminateRequest{Group: g.Name, NodeID: n.ID, ProviderID: n.ProviderID})
	cancel()
	if err != nil {
		c.log.Warn("node terminate failed; will retry", "group", g.Name, "node", n.ID, "err", err)
		if werr := c.updateGroup(ctx, groupKey, func(cur *resource.NodeGroup) bool {
			i := nodeIndex(cur, n.ID)
			if i < 0 {
				return false
			}
			cur.Nodes[i].LastError = "terminate: " + err.Error()
			return true
		}); werr != nil {
			c.log.Warn("recording node terminate failure", "group", g.Name, "node", n.ID, "err", werr)
		}
		c.release(key, true)
		return
	}
	if err := c.deregister(ctx, g, n.ID); err != nil {
		c.log.Warn("deregistering node's instance; will retry", "group", g.Name, "node", n.ID, "err", err)
		c.release(key, true)
		return
	}
	if err := c.updateGroup(ctx, groupKey, func(cur *resource.NodeGroup) bool {
		i := nodeIndex(cur, n.ID)
		if i < 0 {
			return false
		}
		cur.Nodes = slices.Delete(cur.Nodes, i, i+1)
		return true
	}); err != nil {
		c.log.Warn("removing terminated node", "group", g.Name, "node", n.ID, "err", err)
		c.release(key, true)
		return
	}
	c.log.Info("node terminated", "group", g.Name, "node", n.ID, "provider_id", n.ProviderID)
	// Held off like a failure: until the cache shows the node gone, a pass
	// would still see it Terminating and remove it again.
	c.release(key, true)
}

// deregister marks every live container instance of the node INACTIVE (the
// server then closes its agent's connection).
func (c *Controller) deregister(ctx context.Context, g *resource.NodeGroup, nodeID string) error {
	snap := c.cfg.Cache.Snapshot()
	var keys []string
	snap.Walk(g.Scope.KindPrefix(resource.KindContainerInstance, g.Cluster), func(e *cache.Entry) bool {
		if ci, ok := e.Obj.(*resource.ContainerInstance); ok && ci.NodeGroup == g.Name && ci.NodeID == nodeID && ci.Status != resource.InstanceInactive {
			keys = append(keys, e.Key)
		}
		return true
	})
	for _, k := range keys {
		err := c.updateInstance(ctx, k, func(ci *resource.ContainerInstance) bool {
			if ci.Status == resource.InstanceInactive {
				return false
			}
			now := c.cfg.Now().UTC()
			ci.Status = resource.InstanceInactive
			ci.DeregisteredAt = &now
			return true
		})
		if err != nil {
			return err
		}
		c.log.Info("node's container instance deregistered", "group", g.Name, "node", nodeID, "instance", k)
	}
	return nil
}

func nodeIndex(g *resource.NodeGroup, id string) int {
	if g == nil {
		return -1 // the group record is gone (deleted)
	}
	for i, n := range g.Nodes {
		if n.ID == id {
			return i
		}
	}
	return -1
}

// peek returns the shared record at key (never mutate it).
func peek[T any](snap *cache.Snapshot, key string) (*T, bool) { return cache.Peek[T](snap, key) }

// clone deep-copies a record (cache objects are shared).
func clone[T any](v *T) *T { return resource.Clone(v) }
