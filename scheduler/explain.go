package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// fail records why the remaining copies fit nowhere. Once no instance is a
// candidate nothing changes any more, so every remaining copy fails for the
// same reasons and one account serves them all.
func (p *placer) fail(plan *Plan, remaining int) {
	var closest *node
	active := 0
	for i := range p.nodes {
		n := &p.nodes[i]
		if n.why.stage == stageStatus {
			continue
		}
		active++
		in := &p.ins[n.src]
		plan.InstanceFailures = append(plan.InstanceFailures, InstanceFailure{
			InstanceID: in.ID,
			ARN:        in.ARN,
			Reason:     stageReasons[n.why.stage],
			Detail:     p.instanceDetail(n),
		})
		if closest == nil || closer(n, closest) {
			closest = n
		}
	}
	f := Failure{Detail: p.stageAccount()}
	if active == 0 {
		plan.NoInstances = true
		f.Reason = ReasonNoInstances
	} else {
		f.Reason = stageReasons[closest.why.stage]
		in := &p.ins[closest.src]
		f.InstanceID, f.ARN = in.ID, in.ARN
	}
	for range remaining {
		plan.Failures = append(plan.Failures, f)
	}
}

// closer reports whether a got nearer to taking the task than b: a later
// stage, or at the same resource stage, more of that resource left.
func closer(a, b *node) bool {
	if a.why.stage != b.why.stage {
		return a.why.stage > b.why.stage
	}
	switch a.why.stage {
	case stageCPU:
		return a.cpu > b.cpu
	case stageMemory:
		return a.mem > b.mem
	}
	return false
}

// stageAccount summarises every instance's refusal, largest group first:
// "5,000 instances: 3,100 lacked memory, 1,850 failed memberOf(...), 50 draining".
func (p *placer) stageAccount() string {
	if len(p.nodes) == 0 {
		return "the cluster has no container instances"
	}
	type group struct {
		why    reject
		status string
		count  int
	}
	var groups []group
	find := func(why reject, status string) *group {
		for i := range groups {
			if groups[i].why == why && groups[i].status == status {
				return &groups[i]
			}
		}
		groups = append(groups, group{why: why, status: status})
		return &groups[len(groups)-1]
	}
	active := 0
	for i := range p.nodes {
		n := &p.nodes[i]
		status := ""
		if n.why.stage == stageStatus {
			status = p.ins[n.src].Status
		} else {
			active++
		}
		find(n.why, status).count++
	}
	// Largest first; among equals, candidates that were refused before
	// instances that were never candidates, then in pipeline order.
	slices.SortStableFunc(groups, func(a, b group) int {
		return cmp.Or(cmp.Compare(b.count, a.count),
			cmp.Compare(boolInt(a.why.stage == stageStatus), boolInt(b.why.stage == stageStatus)),
			cmp.Compare(a.why.stage, b.why.stage), cmp.Compare(a.why.arg, b.why.arg), strings.Compare(a.status, b.status))
	})
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = thousands(g.count) + " " + p.stagePhrase(g.why, g.status)
	}
	noun := "instances"
	if len(p.nodes) == 1 {
		noun = "instance"
	}
	head := thousands(len(p.nodes)) + " " + noun
	if active == 0 {
		head += ", none ACTIVE"
	}
	return head + ": " + strings.Join(parts, ", ")
}

func (p *placer) stagePhrase(why reject, status string) string {
	switch why.stage {
	case stageStatus:
		if status == "" {
			return "without a status"
		}
		return strings.ToLower(status)
	case stageAgent:
		return "had the agent disconnected"
	case stageAttribute:
		return "lacked attribute " + p.attributeName(why.arg)
	case stageCPU:
		return "lacked CPU"
	case stageMemory:
		return "lacked memory"
	case stagePorts:
		if why.arg == p.tcpDup {
			return fmt.Sprintf("could not map TCP port %d twice", why.arg)
		}
		return fmt.Sprintf("had TCP port %d in use", why.arg)
	case stagePortsUDP:
		if why.arg == p.udpDup {
			return fmt.Sprintf("could not map UDP port %d twice", why.arg)
		}
		return fmt.Sprintf("had UDP port %d in use", why.arg)
	case stageMemberOf:
		return "failed memberOf(" + p.cons[why.arg].src + ")"
	case stageDistinct:
		return "already had a task of group " + p.group + " (distinctInstance)"
	}
	return "were candidates"
}

// attributeName names a required attribute; -1 is the awsvpc capability.
func (p *placer) attributeName(i int32) string {
	if i < 0 {
		return TaskENICapability + " (awsvpc network mode)"
	}
	a := p.task.RequiredAttributes[i]
	if a.Value != "" {
		return a.Name + "=" + a.Value
	}
	return a.Name
}

// instanceDetail says precisely why one instance refused.
func (p *placer) instanceDetail(n *node) string {
	switch n.why.stage {
	case stageAgent:
		return "the container agent is disconnected"
	case stageAttribute:
		return "missing attribute " + p.attributeName(n.why.arg)
	case stageCPU:
		return fmt.Sprintf("needs %d CPU units, %d left", p.task.CPU, n.cpu)
	case stageMemory:
		return fmt.Sprintf("needs %d MiB of memory, %d left", p.task.Memory, n.mem)
	case stagePorts, stagePortsUDP:
		proto := "TCP"
		if n.why.stage == stagePortsUDP {
			proto = "UDP"
		}
		switch {
		case (n.why.stage == stagePorts && n.why.arg == p.tcpDup) || (n.why.stage == stagePortsUDP && n.why.arg == p.udpDup):
			return fmt.Sprintf("the task maps host %s port %d twice", proto, n.why.arg)
		case n.placed > 0:
			return fmt.Sprintf("host %s port %d is taken by a copy placed by this request", proto, n.why.arg)
		}
		return fmt.Sprintf("host %s port %d is in use", proto, n.why.arg)
	case stageMemberOf:
		return "memberOf(" + p.cons[n.why.arg].src + ") is false"
	case stageDistinct:
		return fmt.Sprintf("runs %d task(s) of group %s", n.group, p.group)
	}
	return ""
}

// thousands formats n with comma separators.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
