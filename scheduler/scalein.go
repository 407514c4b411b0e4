package scheduler

import (
	"cmp"
	"hash/fnv"
	"slices"
	"strings"
)

// RunningTask is one task of a service that scale-in may stop.
type RunningTask struct {
	ID         string
	InstanceID string
	// Resources the task holds, given back to its instance when it stops.
	CPU    int64
	Memory int64
	// Protected tasks (scale-in protection) are never chosen.
	Protected bool
}

// ScaleIn picks up to n tasks to stop when a service shrinks, in the order
// they should stop, following ECS's documented order for the service's
// strategies (none means DefaultServiceStrategy):
//
//   - spread(field): stop from the value with the most of the service's
//     tasks, keeping the spread balanced — spread by Availability Zone then
//     instanceId stops from the zone with the most tasks, then from the
//     instance there with the most;
//   - binpack(cpu|memory): stop the task whose instance will have the most of
//     that resource left afterwards, so lightly used instances empty first;
//   - random: an arbitrary but repeatable order (by a hash of the task ID).
//
// Strategies chain as in placement: later ones break the ties of earlier
// ones. Remaining ties go to the lowest task ID. Counts and resources are
// updated after each pick. Protected tasks still count towards the spread but
// are never returned, so fewer than n may come back. instances gives the
// attributes and remaining resources of the instances the tasks run on.
func ScaleIn(tasks []RunningTask, instances []Instance, strategies []Strategy, n int) []string {
	if n <= 0 || len(tasks) == 0 {
		return nil
	}
	if len(strategies) == 0 {
		strategies = DefaultServiceStrategy()
	}
	s := newShrinker(tasks, instances, strategies)
	out := make([]string, 0, min(n, len(tasks)))
	for len(out) < n {
		h := s.best()
		if h == nil {
			break
		}
		out = append(out, s.stop(h))
	}
	return out
}

// host is an instance as scale-in sees it: its service tasks that may stop,
// in the order the per-task keys prefer, and its running totals.
type host struct {
	in       *Instance // nil when the task's instance is unknown
	cpu, mem int64     // left on the instance
	tasks    int       // the service's tasks on it, protected ones included
	queue    []*RunningTask
	vals     []int32 // value index per spread-attribute field
	bucket   int32
	hpos     int32
}

// shrinker mirrors the placer's structure: hosts with tasks to stop are
// heaped per combination of spread-attribute values (inside which those keys
// are equal), and each pick compares the heap tops.
type shrinker struct {
	chain  []key
	fields []string
	counts [][]int // per field, per value: the service's tasks
	hosts  []*host
	heaps  [][]*host
}

func newShrinker(tasks []RunningTask, instances []Instance, strategies []Strategy) *shrinker {
	s := &shrinker{}
	// The same keys as placement, read in reverse: stop where placement
	// would least like to put a task.
	p := &placer{}
	p.compileChain(strategies)
	s.chain, s.fields = p.chain, p.fields

	byID := make(map[string]*Instance, len(instances))
	for i := range instances {
		byID[instances[i].ID] = &instances[i]
	}
	hostOf := map[string]*host{}
	for i := range tasks {
		t := &tasks[i]
		h := hostOf[t.InstanceID]
		if h == nil {
			h = &host{in: byID[t.InstanceID]}
			if h.in != nil {
				h.cpu, h.mem = h.in.CPU, h.in.Memory
			}
			hostOf[t.InstanceID] = h
			s.hosts = append(s.hosts, h)
		}
		h.tasks++
		if !t.Protected {
			h.queue = append(h.queue, t)
		}
	}
	slices.SortFunc(s.hosts, func(a, b *host) int { return strings.Compare(a.id(), b.id()) })

	s.counts = make([][]int, len(s.fields))
	for f, attr := range s.fields {
		ids := map[string]int32{}
		for _, h := range s.hosts {
			v, ok := "", false
			if h.in != nil {
				v, ok = h.in.Attributes[attr]
			}
			if !ok {
				v = "\x00" // no value: a value of its own
			}
			id, seen := ids[v]
			if !seen {
				id = int32(len(s.counts[f]))
				ids[v] = id
				s.counts[f] = append(s.counts[f], 0)
			}
			h.vals = append(h.vals, id)
			s.counts[f][id] += h.tasks
		}
	}
	// Within one instance every instance-level key is equal, so its tasks'
	// order depends only on the task-level ones, which never change.
	buckets := map[[MaxStrategies]int32]int32{}
	for _, h := range s.hosts {
		slices.SortFunc(h.queue, s.taskOrder)
		if len(h.queue) == 0 {
			continue
		}
		var k [MaxStrategies]int32
		copy(k[:], h.vals)
		b, ok := buckets[k]
		if !ok {
			b = int32(len(s.heaps))
			buckets[k] = b
			s.heaps = append(s.heaps, nil)
		}
		h.bucket, h.hpos = b, int32(len(s.heaps[b]))
		s.heaps[b] = append(s.heaps[b], h)
	}
	for b := range s.heaps {
		for i := len(s.heaps[b])/2 - 1; i >= 0; i-- {
			s.down(b, i)
		}
	}
	return s
}

func (h *host) id() string {
	if h.in != nil {
		return h.in.ID
	}
	if len(h.queue) > 0 {
		return h.queue[0].InstanceID
	}
	return ""
}

// taskOrder orders the tasks of one instance: the bigger task first under
// binpack (more left afterwards), by hash under random, then by ID.
func (s *shrinker) taskOrder(a, b *RunningTask) int {
	for _, k := range s.chain {
		switch k.kind {
		case kBinpackCPU:
			if c := cmp.Compare(b.CPU, a.CPU); c != 0 {
				return c
			}
		case kBinpackMemory:
			if c := cmp.Compare(b.Memory, a.Memory); c != 0 {
				return c
			}
		case kRandom:
			if c := cmp.Compare(taskHash(a.ID), taskHash(b.ID)); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		}
	}
	return strings.Compare(a.ID, b.ID)
}

// before reports whether the head task of a should stop before that of b.
func (s *shrinker) before(a, b *host) bool {
	ta, tb := a.queue[0], b.queue[0]
	for _, k := range s.chain {
		switch k.kind {
		case kSpreadAttribute:
			ca, cb := s.counts[k.field][a.vals[k.field]], s.counts[k.field][b.vals[k.field]]
			if ca != cb {
				return ca > cb
			}
		case kSpreadInstance:
			if a.tasks != b.tasks {
				return a.tasks > b.tasks
			}
		case kBinpackCPU:
			if x, y := a.cpu+ta.CPU, b.cpu+tb.CPU; x != y {
				return x > y
			}
		case kBinpackMemory:
			if x, y := a.mem+ta.Memory, b.mem+tb.Memory; x != y {
				return x > y
			}
		case kRandom:
			if x, y := taskHash(ta.ID), taskHash(tb.ID); x != y {
				return x < y
			}
		}
	}
	return ta.ID < tb.ID
}

func (s *shrinker) best() *host {
	var best *host
	for _, hp := range s.heaps {
		if len(hp) > 0 && (best == nil || s.before(hp[0], best)) {
			best = hp[0]
		}
	}
	return best
}

func (s *shrinker) stop(h *host) string {
	t := h.queue[0]
	h.queue = h.queue[1:]
	h.tasks--
	h.cpu += t.CPU
	h.mem += t.Memory
	for f := range s.fields {
		s.counts[f][h.vals[f]]--
	}
	b, i := int(h.bucket), int(h.hpos)
	hp := s.heaps[b]
	if len(h.queue) == 0 {
		last := len(hp) - 1
		s.swap(b, i, last)
		s.heaps[b] = hp[:last]
		if i == last {
			return t.ID
		}
	}
	if !s.down(b, i) {
		s.up(b, i)
	}
	return t.ID
}

func (s *shrinker) swap(b, i, j int) {
	hp := s.heaps[b]
	hp[i], hp[j] = hp[j], hp[i]
	hp[i].hpos, hp[j].hpos = int32(i), int32(j)
}

func (s *shrinker) up(b, i int) {
	hp := s.heaps[b]
	for i > 0 {
		parent := (i - 1) / 2
		if !s.before(hp[i], hp[parent]) {
			return
		}
		s.swap(b, i, parent)
		i = parent
	}
}

func (s *shrinker) down(b, i0 int) bool {
	hp := s.heaps[b]
	i, n := i0, len(hp)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && s.before(hp[r], hp[l]) {
			c = r
		}
		if !s.before(hp[c], hp[i]) {
			break
		}
		s.swap(b, i, c)
		i = c
	}
	return i > i0
}

func taskHash(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}
