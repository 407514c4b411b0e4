package capacity

import (
	"errors"
	"strings"
	"testing"

	"github.com/ecsd/ecsd/api/ecs"
)

func TestValidate(t *testing.T) {
	many := make([]Item, 21)
	for i := range many {
		many[i] = Item{Provider: "cp" + string(rune('a'+i)), Weight: 1}
	}
	twenty := many[:20]

	cases := []struct {
		name  string
		field string
		items []Item
		want  string // substring of the message; "" means valid
	}{
		{"empty", "capacityProviderStrategy", nil, ""},
		{"single", "capacityProviderStrategy", []Item{{Provider: "FARGATE", Weight: 1}}, ""},
		{"fargate pair with base", "capacityProviderStrategy", []Item{{Provider: "FARGATE", Base: 2, Weight: 1}, {Provider: "FARGATE_SPOT", Weight: 3}}, ""},
		{"base on weight-0 provider", "capacityProviderStrategy", []Item{{Provider: "a", Base: 2}, {Provider: "b", Weight: 1}, {Provider: "c", Weight: 19}}, ""},
		{"twenty providers", "capacityProviderStrategy", twenty, ""},
		{"limits", "capacityProviderStrategy", []Item{{Provider: "a", Base: 100000, Weight: 1000}}, ""},

		{"too many", "capacityProviderStrategy", many, "capacityProviderStrategy: A capacity provider strategy can contain at most 20 capacity providers; got 21."},
		{"missing name", "capacityProviderStrategy", []Item{{Weight: 1}}, "capacityProviderStrategy[0].capacityProvider is required"},
		{"base too big", "capacityProviderStrategy", []Item{{Provider: "a", Base: 100001, Weight: 1}}, "capacityProviderStrategy[0].base must be between 0 and 100000; got 100001."},
		{"base negative", "capacityProviderStrategy", []Item{{Provider: "a", Weight: 1}, {Provider: "b", Base: -1}}, "capacityProviderStrategy[1].base must be between 0 and 100000"},
		{"weight too big", "defaultCapacityProviderStrategy", []Item{{Provider: "a", Weight: 1001}}, "defaultCapacityProviderStrategy[0].weight must be between 0 and 1000; got 1001."},
		{"weight negative", "capacityProviderStrategy", []Item{{Provider: "a", Weight: -1}}, "capacityProviderStrategy[0].weight must be between 0 and 1000"},
		{"duplicate", "capacityProviderStrategy", []Item{{Provider: "FARGATE", Weight: 1}, {Provider: "FARGATE", Weight: 2}}, "capacityProviderStrategy: The capacity provider FARGATE is specified more than once."},
		{"two bases", "capacityProviderStrategy", []Item{{Provider: "FARGATE", Base: 1, Weight: 1}, {Provider: "FARGATE_SPOT", Base: 2, Weight: 1}}, "capacityProviderStrategy: There are multiple capacity providers in the specified capacity provider strategy with a base value defined."},
		{"mixed", "defaultCapacityProviderStrategy", []Item{{Provider: "FARGATE", Weight: 1}, {Provider: "ng", Weight: 1}}, "defaultCapacityProviderStrategy: A capacity provider strategy cannot contain a mix of capacity providers using Auto Scaling groups and Fargate providers. Specify one or the other and try again."},
		{"mixed spot", "capacityProviderStrategy", []Item{{Provider: "ng", Weight: 1}, {Provider: "FARGATE_SPOT", Weight: 1}}, "cannot contain a mix"},
		{"all zero", "capacityProviderStrategy", []Item{{Provider: "a"}, {Provider: "b"}}, "capacityProviderStrategy: There are no capacity providers with a weight value greater than zero defined in the specified capacity provider strategy."},
		{"single zero with base", "capacityProviderStrategy", []Item{{Provider: "a", Base: 5}}, "no capacity providers with a weight value greater than zero"},
		{"all zero default", "defaultCapacityProviderStrategy", []Item{{Provider: "FARGATE"}}, "in the default capacity provider strategy. At least one capacity provider must have a weight value greater than zero specified. Update the cluster's default"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Validate(c.field, c.items)
			if c.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var e *ecs.Error
			if !errors.As(err, &e) {
				t.Fatalf("Validate = %v, want *ecs.Error", err)
			}
			if e.Code != ecs.CodeInvalidParameter {
				t.Errorf("code = %s, want %s", e.Code, ecs.CodeInvalidParameter)
			}
			if !strings.Contains(e.Message, c.want) {
				t.Errorf("message = %q, want it to contain %q", e.Message, c.want)
			}
		})
	}
}

func TestValidateStructureSkipsWeight(t *testing.T) {
	items := []Item{{Provider: "FARGATE"}, {Provider: "FARGATE_SPOT"}}
	if err := ValidateStructure("defaultCapacityProviderStrategy", items); err != nil {
		t.Fatalf("ValidateStructure = %v", err)
	}
	if err := RequireWeight("defaultCapacityProviderStrategy", items); err == nil {
		t.Fatal("RequireWeight accepted all-zero weights")
	}
}

func TestWire(t *testing.T) {
	if FromWire(nil) != nil || FromWire([]ecs.CapacityProviderStrategyItem{}) != nil || ToWire(nil) != nil {
		t.Fatal("empty strategy should convert to nil")
	}
	in := []ecs.CapacityProviderStrategyItem{{CapacityProvider: "FARGATE", Base: 2, Weight: 1}, {CapacityProvider: "FARGATE_SPOT", Weight: 3}}
	items := FromWire(in)
	want := []Item{{"FARGATE", 2, 1}, {"FARGATE_SPOT", 0, 3}}
	if !Equal(items, want) {
		t.Fatalf("FromWire = %v, want %v", items, want)
	}
	back := ToWire(items)
	for i := range in {
		if back[i] != in[i] {
			t.Fatalf("ToWire[%d] = %v, want %v", i, back[i], in[i])
		}
	}
	if !IsFargate(items) || IsFargate([]Item{{Provider: "ng", Weight: 1}}) || IsFargate(nil) {
		t.Error("IsFargate wrong")
	}
	if Equal(items, []Item{{"FARGATE_SPOT", 0, 3}, {"FARGATE", 2, 1}}) {
		t.Error("Equal ignores order")
	}
	if got := strings.Join(Providers(items), ","); got != "FARGATE,FARGATE_SPOT" {
		t.Errorf("Providers = %s", got)
	}
	if it, ok := Find(items, "FARGATE_SPOT"); !ok || it.Weight != 3 {
		t.Errorf("Find = %v %v", it, ok)
	}
}
