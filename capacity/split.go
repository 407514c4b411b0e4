package capacity

import "sort"

// Split returns, for n new tasks, the provider each one goes to, in order.
// current counts the tasks each provider already has (a service's running and
// pending tasks; nil for RunTask); counts for providers not in the strategy
// are ignored. The provider with a base fills up to its base first; every
// later task goes to the weighted provider furthest below its share of the
// tasks beyond the base (ties go to the earlier provider in the strategy), so
// each weighted provider stays within one task of weight/sum(weights) of
// them. Providers with weight 0 get only their base. An invalid or empty
// strategy, or n <= 0, gives nil.
func Split(items []Item, current map[string]int, n int) []string {
	if n <= 0 || !valid(items) {
		return nil
	}
	s := newState(items, current)
	out := make([]string, 0, n)
	for range n {
		i := s.next()
		s.add(i)
		out = append(out, items[i].Provider)
	}
	return out
}

// Trim returns the providers to remove n tasks from, in order, so that what
// stays is as close to the strategy as it can be: first tasks on providers
// the strategy no longer names, then tasks above the base on weight-0
// providers, then from the weighted provider furthest above its share (ties go
// to the later provider in the strategy, undoing Split), and base tasks last.
// It returns fewer than n names when fewer tasks exist, and nil for an invalid
// or empty strategy or n <= 0.
func Trim(items []Item, current map[string]int, n int) []string {
	if n <= 0 || !valid(items) {
		return nil
	}
	s := newState(items, current)

	// Tasks on providers outside the strategy, largest group first.
	type stray struct {
		name  string
		count int
	}
	var strays []stray
	for name, c := range current {
		if _, ok := Find(items, name); !ok && c > 0 {
			strays = append(strays, stray{name, c})
		}
	}
	sort.Slice(strays, func(a, b int) bool { return strays[a].name < strays[b].name })

	var out []string
	for len(out) < n {
		best := -1
		for j, st := range strays {
			if st.count > 0 && (best < 0 || st.count > strays[best].count) {
				best = j
			}
		}
		if best >= 0 {
			strays[best].count--
			out = append(out, strays[best].name)
			continue
		}
		i := s.over()
		if i < 0 {
			break
		}
		s.remove(i)
		out = append(out, items[i].Provider)
	}
	return out
}

// Counts tallies provider names (as returned by Split or recorded on tasks).
func Counts(names []string) map[string]int {
	m := make(map[string]int, len(names))
	for _, n := range names {
		m[n]++
	}
	return m
}

// state is the running tally Split and Trim work on. beyond[i] is how many of
// provider i's tasks count against its weight: those above its base.
type state struct {
	items  []Item
	count  []int
	weight int // sum of weights (> 0 for a valid strategy)
	total  int // sum of beyond over weighted providers
}

func newState(items []Item, current map[string]int) *state {
	s := &state{items: items, count: make([]int, len(items)), weight: totalWeight(items)}
	for i, it := range items {
		s.count[i] = max(current[it.Provider], 0)
		if it.Weight > 0 {
			s.total += s.beyond(i)
		}
	}
	return s
}

func (s *state) beyond(i int) int { return max(s.count[i]-s.items[i].Base, 0) }

func (s *state) add(i int) {
	if s.items[i].Weight > 0 && s.count[i] >= s.items[i].Base {
		s.total++
	}
	s.count[i]++
}

func (s *state) remove(i int) {
	s.count[i]--
	if s.items[i].Weight > 0 && s.count[i] >= s.items[i].Base {
		s.total--
	}
}

// next picks the provider for one more task.
func (s *state) next() int {
	for i, it := range s.items {
		if it.Base > 0 && s.count[i] < it.Base {
			return i
		}
	}
	// Deficit scaled by the weight sum: share of total+1 tasks minus what the
	// provider has, both times s.weight to stay in integers.
	best, bestDef := -1, 0
	for i, it := range s.items {
		if it.Weight == 0 {
			continue
		}
		def := it.Weight*(s.total+1) - s.beyond(i)*s.weight
		if best < 0 || def > bestDef {
			best, bestDef = i, def
		}
	}
	return best
}

// over picks the provider to lose one task, or -1 when none has any.
func (s *state) over() int {
	// Weight-0 providers above their base hold tasks the strategy never wanted.
	best, bestEx := -1, 0
	for i, it := range s.items {
		if it.Weight == 0 && s.count[i] > it.Base {
			if ex := s.count[i] - it.Base; best < 0 || ex >= bestEx {
				best, bestEx = i, ex
			}
		}
	}
	if best >= 0 {
		return best
	}
	// Surplus over the share of total-1 tasks, scaled like next's deficit.
	bestSur := 0
	for i, it := range s.items {
		if it.Weight == 0 || s.beyond(i) == 0 {
			continue
		}
		sur := s.beyond(i)*s.weight - it.Weight*(s.total-1)
		if best < 0 || sur >= bestSur {
			best, bestSur = i, sur
		}
	}
	if best >= 0 {
		return best
	}
	// Only base tasks are left.
	for i := len(s.items) - 1; i >= 0; i-- {
		if s.count[i] > 0 {
			return i
		}
	}
	return -1
}
