package scheduler

import (
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
)

// Place places req.Count copies of req.Task on instances, following ECS's
// process: (1) feasibility — ACTIVE, agent connected, required attributes and
// network mode, CPU, memory, static ports; (2) the binding constraints; (3)
// the strategies, applied in order as sort keys; (4) the best instance takes
// the copy, its private state is updated, and the next copy is placed. The
// caller's instances are never modified. Requests are expected to have passed
// Validate; a memberOf expression that does not parse matches no instance.
// Count is trusted: every unplaced copy gets its own Failure, so callers bound
// it (RunTask allows 10, a service its desired count).
//
// Cost: O(n) to prepare n instances (each memberOf expression evaluated once
// per instance, memoised by attribute value where it can be), then
// O(b + log n) per copy, where b is the number of distinct value combinations
// of the spread-by-attribute fields (3 for spread by Availability Zone).
func Place(instances []Instance, req Request) Plan {
	var plan Plan
	if req.Count <= 0 {
		return plan
	}
	p := newPlacer(instances, &req)
	defer p.release()
	plan.Placements = make([]Placement, 0, min(req.Count, 1<<20))
	for placed := 0; placed < req.Count; placed++ {
		n := p.best()
		if n == nil {
			p.fail(&plan, req.Count-placed)
			break
		}
		p.commit(n)
		in := &instances[n.src]
		plan.Placements = append(plan.Placements, Placement{InstanceID: in.ID, ARN: in.ARN})
	}
	return plan
}

// keyKind is one strategy as a sort key: lower keys win.
type keyKind uint8

const (
	kSpreadAttribute keyKind = iota + 1 // tasks of the group with the instance's value of an attribute
	kSpreadInstance                     // tasks of the group on the instance
	kBinpackCPU                         // CPU left
	kBinpackMemory                      // memory left
	kRandom                             // the node's next random event (ends the chain)
)

type key struct {
	kind  keyKind
	field int // index into placer.fields for kSpreadAttribute
}

// node is the private, mutable state of one instance during a request.
// It holds no pointers, so a request's nodes cost the garbage collector
// nothing to scan.
type node struct {
	src    int32 // index in the caller's instances
	idx    int32 // position in instance ID order: the last tie-break
	cpu    int64
	mem    int64
	group  int // tasks of the request's group here, existing and placed
	placed int // copies placed here by this request
	// rnd breaks ties and is the key of the random strategy. It is the time
	// of the node's next event in a Poisson process of rate 1: drawn from the
	// request's seed in ID order, and advanced by a fresh exponential draw
	// whenever the node takes a copy. Taking the earliest event is then a
	// uniform choice among the tied candidates every time, independent of
	// earlier choices (the exponential is memoryless), with one heap instead
	// of a scan of the ties.
	rnd    float64
	bucket int32
	hpos   int32 // index in the bucket's heap; -1 when not a candidate
	why    reject
}

// bucket holds the candidates that share one combination of values of the
// spread-by-attribute fields. Inside a bucket those keys are equal, so a heap
// ordered by the full chain orders it by the remaining (per-instance) keys;
// across buckets, the bucket tops are compared by the full chain.
type bucket struct {
	heap []int32
	live int32 // index in placer.live; -1 when empty
}

type placer struct {
	group    string
	task     Task
	needsENI bool
	tcpDup   int32 // a port the task maps twice, or -1
	udpDup   int32
	cons     []*constraint
	distinct bool

	ins    []Instance // the caller's, read only
	chain  []key
	fields []string // attribute names spread over (before any random)
	index  []valueIndex
	multi  map[[MaxStrategies]int32]int32 // bucket per value combination, with 2+ fields
	vals   []int32                        // value index per node per field: vals[i*len(fields)+f]
	counts [][]int                        // per field, per value index: tasks of the group on ACTIVE instances
	nodes  []node                         // in instance ID order
	bucks  []bucket                       // candidates by value combination
	live   []int32                        // buckets that have candidates
	rng    *rand.Rand
}

func newPlacer(instances []Instance, req *Request) *placer {
	p := &placer{
		group:  req.Group,
		task:   req.Task,
		tcpDup: -1,
		udpDup: -1,
		rng:    rand.New(rand.NewPCG(uint64(req.Seed), 0x5eed_ec5d)),
	}
	switch strings.ToLower(p.task.NetworkMode) {
	case "awsvpc":
		p.needsENI = true
		p.task.TCPPorts, p.task.UDPPorts = nil, nil // the task's own ENI, no host ports
	case "none":
		p.task.TCPPorts, p.task.UDPPorts = nil, nil
	}
	p.tcpDup = duplicate(p.task.TCPPorts)
	p.udpDup = duplicate(p.task.UDPPorts)
	for _, c := range req.Constraints {
		switch c.Type {
		case ConstraintMemberOf:
			p.cons = append(p.cons, newConstraint(c.Expression))
		case ConstraintDistinctInstance:
			p.distinct = true
		}
	}
	p.compileChain(req.Strategies)

	// Nodes in ID order: ties end on the ID, and the random draws follow it,
	// so the plan does not depend on the order the caller listed instances.
	order := make([]int32, len(instances))
	for i := range order {
		order[i] = int32(i)
	}
	if !slices.IsSortedFunc(instances, func(a, b Instance) int { return strings.Compare(a.ID, b.ID) }) {
		slices.SortStableFunc(order, func(a, b int32) int { return strings.Compare(instances[a].ID, instances[b].ID) })
	}
	// One pass: each instance's maps are read once, while they are warm.
	p.ins = instances
	p.nodes = getNodes(len(instances))
	p.startValues()
	for i, o := range order {
		in := &instances[o]
		n := &p.nodes[i]
		*n = node{
			src:   o,
			idx:   int32(i),
			cpu:   in.CPU,
			mem:   in.Memory,
			group: in.GroupTasks[req.Group],
			rnd:   p.rng.ExpFloat64(),
			hpos:  -1,
		}
		p.indexValues(n, in)
		if n.why = p.check(n, true); n.why.stage == stageOK {
			p.addCandidate(n)
		}
	}
	p.heapify()
	return p
}

// Node slices are recycled between requests: preparing one is a pass over
// every instance, and on a large fleet handing the garbage collector a fresh
// slice each time costs as much as the pass. Nodes hold no pointers, so a
// pooled slice keeps nothing alive.
var nodePool sync.Pool

func getNodes(n int) []node {
	if s, ok := nodePool.Get().(*[]node); ok && cap(*s) >= n {
		return (*s)[:n]
	}
	return make([]node, n)
}

func (p *placer) release() {
	s := p.nodes[:0]
	p.nodes = nil
	nodePool.Put(&s)
}

// compileChain turns strategies into sort keys. Nothing after random can
// matter (random draws never tie), so the chain ends there.
func (p *placer) compileChain(strategies []Strategy) {
	if len(strategies) == 0 {
		strategies = DefaultRunTaskStrategy()
	}
	strategies = strategies[:min(len(strategies), MaxStrategies)] // Validate refuses more
	for _, s := range strategies {
		switch s.Type {
		case StrategyRandom:
			p.chain = append(p.chain, key{kind: kRandom})
			return
		case StrategyBinpack:
			if k, ok := binpackField(s.Field); ok {
				p.chain = append(p.chain, key{kind: k})
			}
		case StrategySpread:
			k, attr, ok := spreadField(s.Field)
			if !ok {
				continue
			}
			if k == kSpreadInstance {
				p.chain = append(p.chain, key{kind: k})
				continue
			}
			f := slices.Index(p.fields, attr)
			if f < 0 {
				f = len(p.fields)
				p.fields = append(p.fields, attr)
			}
			p.chain = append(p.chain, key{kind: k, field: f})
		}
	}
}

// valueIndex numbers one spread attribute's values.
type valueIndex struct {
	values  interner
	slots   []int32 // count slot of each interned value
	missing int32   // count slot of "no such attribute", or -1
}

func (p *placer) startValues() {
	nf := len(p.fields)
	if nf == 0 {
		return
	}
	p.vals = make([]int32, len(p.nodes)*nf)
	p.counts = make([][]int, nf)
	p.index = make([]valueIndex, nf)
	for f := range p.index {
		p.index[f].missing = -1
	}
}

// indexValues numbers the node's values of the spread attributes and counts
// the group's tasks per value. Instances without the attribute share one
// value of their own. Only ACTIVE instances count: tasks on a draining
// instance are on their way out.
func (p *placer) indexValues(n *node, in *Instance) {
	nf := len(p.fields)
	for f, attr := range p.fields {
		x := &p.index[f]
		v, ok := in.Attributes[attr]
		var id int32
		switch {
		case !ok && x.missing >= 0:
			id = x.missing
		case !ok:
			x.missing = int32(len(p.counts[f]))
			id = x.missing
			p.counts[f] = append(p.counts[f], 0)
		default:
			var fresh bool
			if id, fresh = x.values.id(v); fresh {
				x.slots = append(x.slots, int32(len(p.counts[f])))
				p.counts[f] = append(p.counts[f], 0)
			}
			id = x.slots[id]
		}
		p.vals[int(n.idx)*nf+f] = id
		if in.Status == "ACTIVE" {
			p.counts[f][id] += n.group
		}
	}
}

// addCandidate puts a feasible node in the bucket of its spread values.
func (p *placer) addCandidate(n *node) {
	nf := len(p.fields)
	var b int32
	switch nf {
	case 0:
	case 1:
		b = p.vals[n.idx]
	default:
		var k [MaxStrategies]int32
		i := int(n.idx)
		copy(k[:], p.vals[i*nf:i*nf+nf])
		if p.multi == nil {
			p.multi = map[[MaxStrategies]int32]int32{}
		}
		id, ok := p.multi[k]
		if !ok {
			id = int32(len(p.multi))
			p.multi[k] = id
		}
		b = id
	}
	for int(b) >= len(p.bucks) {
		p.bucks = append(p.bucks, bucket{live: -1})
	}
	n.bucket = b
	bk := &p.bucks[b]
	n.hpos = int32(len(bk.heap))
	bk.heap = append(bk.heap, n.idx)
}

// heapify orders every bucket and lists the ones with candidates.
func (p *placer) heapify() {
	for b := range p.bucks {
		bk := &p.bucks[b]
		if len(bk.heap) == 0 {
			continue
		}
		for i := len(bk.heap)/2 - 1; i >= 0; i-- {
			p.down(bk, i)
		}
		bk.live = int32(len(p.live))
		p.live = append(p.live, int32(b))
	}
}

// less orders candidates by the strategy chain, then the random draw, then ID.
func (p *placer) less(a, b *node) bool {
	nf := len(p.fields)
	for _, k := range p.chain {
		switch k.kind {
		case kSpreadAttribute:
			c := p.counts[k.field]
			ca, cb := c[p.vals[int(a.idx)*nf+k.field]], c[p.vals[int(b.idx)*nf+k.field]]
			if ca != cb {
				return ca < cb
			}
		case kSpreadInstance:
			if a.group != b.group {
				return a.group < b.group
			}
		case kBinpackCPU:
			if a.cpu != b.cpu {
				return a.cpu < b.cpu
			}
		case kBinpackMemory:
			if a.mem != b.mem {
				return a.mem < b.mem
			}
		case kRandom:
		}
	}
	if a.rnd != b.rnd {
		return a.rnd < b.rnd
	}
	return a.idx < b.idx
}

// best returns the winning candidate, or nil when there is none.
func (p *placer) best() *node {
	var best *node
	for _, b := range p.live {
		top := &p.nodes[p.bucks[b].heap[0]]
		if best == nil || p.less(top, best) {
			best = top
		}
	}
	return best
}

// commit places one copy on n and re-checks n, the only instance whose
// feasibility or per-instance keys a placement changes.
func (p *placer) commit(n *node) {
	n.cpu -= p.task.CPU
	n.mem -= p.task.Memory
	n.placed++
	n.group++
	nf := len(p.fields)
	for f := range p.fields {
		p.counts[f][p.vals[int(n.idx)*nf+f]]++
	}
	n.rnd += p.rng.ExpFloat64()
	bk := &p.bucks[n.bucket]
	if r := p.check(n, false); r.stage != stageOK {
		n.why = r
		p.remove(bk, int(n.hpos))
		n.hpos = -1
		if len(bk.heap) == 0 {
			p.dropBucket(n.bucket)
		}
		return
	}
	// Fewer resources move n up under binpack; more tasks and a later
	// event move it down.
	i := int(n.hpos)
	if !p.down(bk, i) {
		p.up(bk, i)
	}
}

func (p *placer) dropBucket(b int32) {
	bk := &p.bucks[b]
	i := bk.live
	last := p.live[len(p.live)-1]
	p.live[i] = last
	p.bucks[last].live = i
	p.live = p.live[:len(p.live)-1]
	bk.live = -1
}

// Binary heap over node indices, ordered by less, keeping node.hpos current.

func (p *placer) swap(bk *bucket, i, j int) {
	bk.heap[i], bk.heap[j] = bk.heap[j], bk.heap[i]
	p.nodes[bk.heap[i]].hpos = int32(i)
	p.nodes[bk.heap[j]].hpos = int32(j)
}

func (p *placer) up(bk *bucket, i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !p.less(&p.nodes[bk.heap[i]], &p.nodes[bk.heap[parent]]) {
			return
		}
		p.swap(bk, i, parent)
		i = parent
	}
}

// down sifts i down and reports whether it moved.
func (p *placer) down(bk *bucket, i0 int) bool {
	i, n := i0, len(bk.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && p.less(&p.nodes[bk.heap[r]], &p.nodes[bk.heap[l]]) {
			c = r
		}
		if !p.less(&p.nodes[bk.heap[c]], &p.nodes[bk.heap[i]]) {
			break
		}
		p.swap(bk, i, c)
		i = c
	}
	return i > i0
}

func (p *placer) remove(bk *bucket, i int) {
	last := len(bk.heap) - 1
	if i != last {
		p.swap(bk, i, last)
	}
	bk.heap = bk.heap[:last]
	if i != last {
		if !p.down(bk, i) {
			p.up(bk, i)
		}
	}
}

// duplicate returns a port listed twice, or -1.
func duplicate(ports []int32) int32 {
	for i, a := range ports {
		if slices.Contains(ports[i+1:], a) {
			return a
		}
	}
	return -1
}
