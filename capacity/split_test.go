package capacity

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// deviation returns, for each weighted provider, how far its tasks beyond the
// base are from weight/sum(weights) of all tasks beyond the base; the largest
// absolute value is returned.
func maxDeviation(items []Item, counts map[string]int) float64 {
	w, total := 0, 0
	for _, it := range items {
		if it.Weight > 0 {
			w += it.Weight
			total += max(counts[it.Provider]-it.Base, 0)
		}
	}
	worst := 0.0
	for _, it := range items {
		if it.Weight == 0 {
			continue
		}
		d := float64(max(counts[it.Provider]-it.Base, 0)) - float64(total)*float64(it.Weight)/float64(w)
		if d < 0 {
			d = -d
		}
		worst = max(worst, d)
	}
	return worst
}

func TestSplitOneToThree(t *testing.T) {
	items := []Item{{Provider: "FARGATE", Weight: 1}, {Provider: "FARGATE_SPOT", Weight: 3}}
	var prev []string
	for n := 1; n <= 400; n++ {
		got := Split(items, nil, n)
		if len(got) != n {
			t.Fatalf("n=%d: %d names", n, len(got))
		}
		// Placing one at a time gives the same as placing all at once.
		if !slices.Equal(got[:n-1], prev) {
			t.Fatalf("n=%d: not an extension of n-1", n)
		}
		prev = got
		c := Counts(got)
		if n%4 == 0 {
			if c["FARGATE"] != n/4 || c["FARGATE_SPOT"] != 3*n/4 {
				t.Fatalf("n=%d: %v, want exactly 25%%/75%%", n, c)
			}
		}
		if d := maxDeviation(items, c); d >= 1 {
			t.Fatalf("n=%d: %v deviates by %.2f", n, c, d)
		}
	}
}

func TestSplitBaseWithWeightZero(t *testing.T) {
	items := []Item{{Provider: "a", Base: 2}, {Provider: "b", Weight: 1}, {Provider: "c", Weight: 19}}
	for n := 1; n <= 400; n++ {
		got := Split(items, nil, n)
		for i := 0; i < min(n, 2); i++ {
			if got[i] != "a" {
				t.Fatalf("n=%d: task %d went to %s, want the base provider a", n, i, got[i])
			}
		}
		c := Counts(got)
		if c["a"] != min(n, 2) {
			t.Fatalf("n=%d: a has %d, want only its base", n, c["a"])
		}
		rest := n - c["a"]
		if rest%20 == 0 && (c["b"] != rest/20 || c["c"] != rest*19/20) {
			t.Fatalf("n=%d: %v, want exactly 5%%/95%% of %d", n, c, rest)
		}
		if d := maxDeviation(items, c); d >= 1 {
			t.Fatalf("n=%d: %v deviates by %.2f", n, c, d)
		}
	}
}

func TestSplitBaseOnWeightedProvider(t *testing.T) {
	items := []Item{{Provider: "FARGATE", Base: 1, Weight: 1}, {Provider: "FARGATE_SPOT", Weight: 4}}
	got := Split(items, nil, 11)
	c := Counts(got)
	// One base task, then 10 split 1:4.
	if got[0] != "FARGATE" || c["FARGATE"] != 3 || c["FARGATE_SPOT"] != 8 {
		t.Fatalf("Split = %v (%v)", got, c)
	}
}

func TestSplitWithCurrent(t *testing.T) {
	items := []Item{{Provider: "a", Weight: 1}, {Provider: "b", Weight: 1}}

	// A service whose tasks all sit on a: the new ones go to b until even.
	got := Split(items, map[string]int{"a": 10}, 10)
	if c := Counts(got); c["b"] != 10 {
		t.Fatalf("Split = %v, want all on b", got)
	}
	got = Split(items, map[string]int{"a": 10}, 14)
	if c := Counts(got); c["a"] != 2 || c["b"] != 12 {
		t.Fatalf("Split = %v, want 2 on a, 12 on b", Counts(got))
	}

	// The base counts what already runs.
	based := []Item{{Provider: "a", Base: 3}, {Provider: "b", Weight: 1}}
	if got := Split(based, map[string]int{"a": 2}, 3); !slices.Equal(got, []string{"a", "b", "b"}) {
		t.Fatalf("Split = %v", got)
	}
	if got := Split(based, map[string]int{"a": 5}, 2); !slices.Equal(got, []string{"b", "b"}) {
		t.Fatalf("Split = %v", got)
	}

	// Counts on providers outside the strategy are ignored; negative counts are zero.
	if got := Split(items, map[string]int{"gone": 50, "a": -3}, 2); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Split = %v", got)
	}

	// Growing a service one task at a time matches placing them all at once.
	ratio := []Item{{Provider: "x", Base: 2, Weight: 2}, {Provider: "y", Weight: 3}, {Provider: "z", Weight: 5}}
	cur := map[string]int{}
	for range 200 {
		cur[Split(ratio, cur, 1)[0]]++
	}
	if !mapsEqual(cur, Counts(Split(ratio, nil, 200))) {
		t.Fatalf("incremental %v != batch %v", cur, Counts(Split(ratio, nil, 200)))
	}

	// From a skewed start, new tasks pull the counts to the ratio.
	cur = map[string]int{"x": 40, "y": 0, "z": 7}
	for _, p := range Split(ratio, cur, 150) {
		cur[p]++
	}
	if d := maxDeviation(ratio, cur); d >= 1 {
		t.Fatalf("after 150 more: %v deviates by %.2f", cur, d)
	}
}

func TestSplitInvalid(t *testing.T) {
	for _, items := range [][]Item{
		nil,
		{{Provider: "a"}},
		{{Provider: "FARGATE", Weight: 1}, {Provider: "ng", Weight: 1}},
		{{Provider: "a", Base: 1, Weight: 1}, {Provider: "b", Base: 1, Weight: 1}},
	} {
		if got := Split(items, nil, 5); got != nil {
			t.Errorf("Split(%v) = %v, want nil", items, got)
		}
		if got := Trim(items, map[string]int{"a": 3}, 1); got != nil {
			t.Errorf("Trim(%v) = %v, want nil", items, got)
		}
	}
	if Split([]Item{{Provider: "a", Weight: 1}}, nil, 0) != nil || Split([]Item{{Provider: "a", Weight: 1}}, nil, -1) != nil {
		t.Error("Split with n <= 0 should be nil")
	}
}

func TestTrim(t *testing.T) {
	items := []Item{{Provider: "FARGATE", Weight: 1}, {Provider: "FARGATE_SPOT", Weight: 3}}
	for start := 1; start <= 120; start++ {
		for k := 1; k <= start; k++ {
			cur := Counts(Split(items, nil, start))
			got := Trim(items, cur, k)
			if len(got) != k {
				t.Fatalf("start=%d k=%d: %d names", start, k, len(got))
			}
			for _, p := range got {
				cur[p]--
			}
			if d := maxDeviation(items, cur); d >= 1 {
				t.Fatalf("start=%d k=%d: %v deviates by %.2f", start, k, cur, d)
			}
			// Trimming undoes splitting: the remainder is what Split gives for it.
			if want := Counts(Split(items, nil, start-k)); !mapsEqual(cur, want) {
				t.Fatalf("start=%d k=%d: %v, want %v", start, k, cur, want)
			}
		}
	}

	// Base tasks go last; weight-0 tasks above base and strays go first.
	based := []Item{{Provider: "a", Base: 2}, {Provider: "b", Weight: 1}, {Provider: "c", Weight: 19}}
	cur := map[string]int{"a": 4, "b": 1, "c": 19, "old": 1}
	got := Trim(based, cur, 25)
	if got[0] != "old" || got[1] != "a" || got[2] != "a" {
		t.Fatalf("Trim order = %v", got)
	}
	if !slices.Equal(got[len(got)-2:], []string{"a", "a"}) || slices.Contains(got[3:23], "a") {
		t.Fatalf("base tasks not last: %v", got)
	}
	// Asking for more than exists returns what exists.
	if got := Trim(based, map[string]int{"a": 1, "c": 2}, 10); len(got) != 3 {
		t.Fatalf("Trim = %v, want 3 names", got)
	}
}

// TestSplitProperties checks random valid strategies: the base provider fills
// first, weight-0 providers never pass their base, and every weighted
// provider is within one task of its share of the tasks beyond the base.
func TestSplitProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 1))
	for tc := range 1000 {
		items := randomStrategy(r)
		if err := Validate("capacityProviderStrategy", items); err != nil {
			t.Fatalf("case %d: generated invalid strategy %v: %v", tc, items, err)
		}
		n := 1 + r.IntN(300)
		got := Split(items, nil, n)
		if len(got) != n {
			t.Fatalf("case %d: %d names for n=%d", tc, len(got), n)
		}
		c := Counts(got)
		for _, it := range items {
			if it.Base > 0 {
				for i := 0; i < min(n, it.Base); i++ {
					if got[i] != it.Provider {
						t.Fatalf("case %d %v: task %d not on base provider", tc, items, i)
					}
				}
				if c[it.Provider] < min(n, it.Base) {
					t.Fatalf("case %d %v: base not met: %v", tc, items, c)
				}
			}
			if it.Weight == 0 && c[it.Provider] > it.Base {
				t.Fatalf("case %d %v: weight-0 provider above base: %v", tc, items, c)
			}
		}
		if d := maxDeviation(items, c); d >= 1 {
			t.Fatalf("case %d %v n=%d: %v deviates by %.2f", tc, items, n, c, d)
		}

		// A balanced service keeps balance as it grows and shrinks.
		more := r.IntN(100)
		for _, p := range Split(items, c, more) {
			c[p]++
		}
		if d := maxDeviation(items, c); d >= 1 {
			t.Fatalf("case %d: after growing, %v deviates by %.2f", tc, c, d)
		}
		total := n + more
		k := r.IntN(total + 1)
		trimmed := Trim(items, c, k)
		if len(trimmed) != k {
			t.Fatalf("case %d: Trim gave %d names for %d", tc, len(trimmed), k)
		}
		for _, p := range trimmed {
			c[p]--
			if c[p] < 0 {
				t.Fatalf("case %d: Trim removed from empty %s", tc, p)
			}
		}
		if d := maxDeviation(items, c); d >= 1 {
			t.Fatalf("case %d: after trimming %d, %v deviates by %.2f", tc, k, c, d)
		}
		for _, it := range items {
			if it.Base > 0 && c[it.Provider] < min(total-k, it.Base) {
				t.Fatalf("case %d: trim took base tasks early: %v", tc, c)
			}
		}

		// From arbitrary counts, new tasks never make the worst deviation
		// worse than it was (or than one task).
		cur := map[string]int{}
		for _, it := range items {
			cur[it.Provider] = r.IntN(50)
		}
		before := maxDeviation(items, cur)
		for _, p := range Split(items, cur, r.IntN(200)) {
			cur[p]++
		}
		if after := maxDeviation(items, cur); after > max(before, 1) {
			t.Fatalf("case %d %v: deviation grew from %.2f to %.2f", tc, items, before, after)
		}
	}
}

func randomStrategy(r *rand.Rand) []Item {
	var names []string
	if r.IntN(2) == 0 {
		names = []string{"FARGATE", "FARGATE_SPOT"}
	} else {
		for i := range 20 {
			names = append(names, "ng"+string(rune('a'+i)))
		}
	}
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	k := 1 + r.IntN(len(names))
	items := make([]Item, k)
	for i := range items {
		items[i] = Item{Provider: names[i]}
		switch r.IntN(4) {
		case 0: // weight 0
		case 1:
			items[i].Weight = 1 + r.IntN(5)
		case 2:
			items[i].Weight = 1 + r.IntN(1000)
		default:
			items[i].Weight = 1 + r.IntN(50)
		}
	}
	items[r.IntN(k)].Weight = 1 + r.IntN(20)
	if r.IntN(2) == 0 {
		items[r.IntN(k)].Base = r.IntN(30)
	}
	return items
}

func mapsEqual(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}
