package capacity

import "testing"

// fuzzNames is the pool fuzz inputs pick providers from: both Fargate ones,
// node-group ones, and an empty (invalid) name.
var fuzzNames = []string{"FARGATE", "FARGATE_SPOT", "ng-a", "ng-b", "ng-c", ""}

// decodeStrategy turns bytes into a strategy, four bytes an item: provider,
// base, weight (two bytes, so out-of-range weights occur), and up to 25 items
// so the too-many rule is reachable.
func decodeStrategy(data []byte) []Item {
	var items []Item
	for len(data) >= 4 && len(items) < 25 {
		items = append(items, Item{
			Provider: fuzzNames[int(data[0])%len(fuzzNames)],
			Base:     int(int8(data[1])),
			Weight:   int(data[2])<<4 | int(data[3]&0x0f) - 8,
		})
		data = data[4:]
	}
	return items
}

func FuzzSplit(f *testing.F) {
	f.Add([]byte{0, 0, 0, 9, 1, 0, 0, 11}, []byte{}, uint16(40))                  // FARGATE 1 : FARGATE_SPOT 3
	f.Add([]byte{2, 2, 0, 8, 3, 0, 0, 9, 4, 0, 1, 11}, []byte{5, 1}, uint16(100)) // base 2 weight 0, 1:19
	f.Add([]byte{0, 0, 0, 8, 1, 0, 0, 8}, []byte{}, uint16(3))                    // all zero
	f.Add([]byte{0, 1, 0, 9, 2, 0, 0, 9}, []byte{}, uint16(3))                    // mixed
	f.Add([]byte{2, 5, 0, 9, 3, 3, 0, 9}, []byte{200, 7, 9}, uint16(7))           // two bases
	f.Fuzz(func(t *testing.T, strategy, current []byte, n16 uint16) {
		items := decodeStrategy(strategy)
		cur := map[string]int{}
		for i, b := range current {
			cur[fuzzNames[i%len(fuzzNames)]+string(rune('0'+i%3))] = int(int8(b))
			cur[fuzzNames[i%len(fuzzNames)]] += int(b)
		}
		n := int(n16 % 2048)
		ok := len(items) > 0 && Validate("capacityProviderStrategy", items) == nil

		got := Split(items, cur, n)
		if !ok || n == 0 {
			if got != nil {
				t.Fatalf("Split(%v, n=%d) = %v, want nil for an invalid strategy or n=0", items, n, got)
			}
		} else {
			if len(got) != n {
				t.Fatalf("Split(%v, n=%d) gave %d names", items, n, len(got))
			}
			for _, p := range got {
				if _, in := Find(items, p); !in {
					t.Fatalf("Split(%v) named %q, not in the strategy", items, p)
				}
			}
		}

		trimmed := Trim(items, cur, n)
		if !ok && trimmed != nil {
			t.Fatalf("Trim(%v) = %v, want nil for an invalid strategy", items, trimmed)
		}
		if len(trimmed) > n {
			t.Fatalf("Trim gave %d names for n=%d", len(trimmed), n)
		}
		left := map[string]int{}
		for k, v := range cur {
			left[k] = max(v, 0)
		}
		for _, p := range trimmed {
			left[p]--
			if left[p] < 0 {
				t.Fatalf("Trim(%v, %v) removed more from %q than it has", items, cur, p)
			}
		}
	})
}
