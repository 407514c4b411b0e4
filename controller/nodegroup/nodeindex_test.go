package nodegroup

import "testing"

// A terminate that finishes after its group was deleted finds no record: the
// callbacks must see "no such node", not dereference nil (it crashed the server).
func TestNodeIndexOfDeletedGroup(t *testing.T) {
	if i := nodeIndex(nil, "g-1"); i != -1 {
		t.Fatalf("nodeIndex(nil) = %d, want -1", i)
	}
}
