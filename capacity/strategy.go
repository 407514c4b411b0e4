// Package capacity holds the pure arithmetic of capacity provider strategies:
// checking a strategy the way ECS does, and deciding which provider each new
// task goes to (base first, then by weight) or which tasks to remove on
// scale-in. It does no I/O; callers resolve provider names against the
// cluster and store the results.
package capacity

import (
	"strconv"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/resource"
)

// Limits of a strategy. The item ranges come from the ECS model; the count is
// the documented maximum (the model itself puts no bound on the list).
const (
	MaxItems  = 20
	MaxBase   = 100000
	MaxWeight = 1000
)

// Item is one provider of a strategy with its base and weight.
type Item struct {
	Provider string
	Base     int
	Weight   int
}

// FromWire converts a wire strategy. A nil or empty input gives nil: callers
// treat an empty strategy as "none given".
func FromWire(in []ecs.CapacityProviderStrategyItem) []Item {
	if len(in) == 0 {
		return nil
	}
	out := make([]Item, len(in))
	for i, v := range in {
		out[i] = Item{Provider: v.CapacityProvider, Base: int(v.Base), Weight: int(v.Weight)}
	}
	return out
}

// ToWire converts back to the wire form, keeping order. Empty in gives nil.
func ToWire(in []Item) []ecs.CapacityProviderStrategyItem {
	if len(in) == 0 {
		return nil
	}
	out := make([]ecs.CapacityProviderStrategyItem, len(in))
	for i, v := range in {
		out[i] = ecs.CapacityProviderStrategyItem{CapacityProvider: v.Provider, Base: int32(v.Base), Weight: int32(v.Weight)}
	}
	return out
}

// Providers returns the provider names in strategy order.
func Providers(items []Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Provider
	}
	return out
}

// IsFargate reports whether the strategy uses the Fargate providers (a valid
// strategy uses either only those or none of them).
func IsFargate(items []Item) bool {
	return len(items) > 0 && resource.IsFargateProvider(items[0].Provider)
}

// Equal reports whether two strategies are the same, order included: ECS
// treats any change of the list as a strategy change.
func Equal(a, b []Item) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Find returns the item for provider, if the strategy has it.
func Find(items []Item, provider string) (Item, bool) {
	for _, it := range items {
		if it.Provider == provider {
			return it, true
		}
	}
	return Item{}, false
}

// Validate checks a strategy on its own (not whether its providers exist or
// are associated with the cluster): the item count, each item's name and
// ranges, no provider twice, a base on at most one provider, no mix of Fargate
// and node-group providers, and at least one positive weight. field names the
// request member in messages ("capacityProviderStrategy",
// "defaultCapacityProviderStrategy"). An empty strategy is valid.
func Validate(field string, items []Item) error {
	if err := ValidateStructure(field, items); err != nil {
		return err
	}
	return RequireWeight(field, items)
}

// ValidateStructure is Validate without the positive-weight rule, for callers
// that check that rule separately (when the strategy is used).
func ValidateStructure(field string, items []Item) error {
	if len(items) > MaxItems {
		return ecs.Errorf(ecs.CodeInvalidParameter,
			"%s: A capacity provider strategy can contain at most %d capacity providers; got %d.", field, MaxItems, len(items))
	}
	seen := make(map[string]bool, len(items))
	for i, it := range items {
		path := field + "[" + strconv.Itoa(i) + "]"
		if it.Provider == "" {
			return ecs.Errorf(ecs.CodeInvalidParameter, "%s.capacityProvider is required but was not provided.", path)
		}
		if it.Base < 0 || it.Base > MaxBase {
			return ecs.Errorf(ecs.CodeInvalidParameter, "%s.base must be between 0 and %d; got %d.", path, MaxBase, it.Base)
		}
		if it.Weight < 0 || it.Weight > MaxWeight {
			return ecs.Errorf(ecs.CodeInvalidParameter, "%s.weight must be between 0 and %d; got %d.", path, MaxWeight, it.Weight)
		}
		if seen[it.Provider] {
			return ecs.Errorf(ecs.CodeInvalidParameter,
				"%s: The capacity provider %s is specified more than once. Each capacity provider can appear only once in a capacity provider strategy.", field, it.Provider)
		}
		seen[it.Provider] = true
	}
	withBase := 0
	for _, it := range items {
		if it.Base > 0 {
			withBase++
		}
	}
	if withBase > 1 {
		return ecs.Errorf(ecs.CodeInvalidParameter,
			"%s: There are multiple capacity providers in the specified capacity provider strategy with a base value defined. Only one capacity provider can have a base value greater than zero.", field)
	}
	fargate, other := false, false
	for _, it := range items {
		if resource.IsFargateProvider(it.Provider) {
			fargate = true
		} else {
			other = true
		}
	}
	if fargate && other {
		return ecs.Errorf(ecs.CodeInvalidParameter,
			"%s: A capacity provider strategy cannot contain a mix of capacity providers using Auto Scaling groups and Fargate providers. Specify one or the other and try again.", field)
	}
	return nil
}

// RequireWeight fails when a non-empty strategy has no provider with a weight
// above zero: nothing could place the tasks beyond the base.
func RequireWeight(field string, items []Item) error {
	if len(items) == 0 || totalWeight(items) > 0 {
		return nil
	}
	which, hint := "specified", "Specify a capacity provider strategy with a valid weight and try again."
	if field == "defaultCapacityProviderStrategy" {
		which = "default"
		hint = "Update the cluster's default capacity provider strategy or specify a valid capacity provider strategy and try again."
	}
	return ecs.Errorf(ecs.CodeInvalidParameter,
		"%s: There are no capacity providers with a weight value greater than zero defined in the %s capacity provider strategy. At least one capacity provider must have a weight value greater than zero specified. %s",
		field, which, hint)
}

// valid is the quiet form of Validate used by Split and Trim.
func valid(items []Item) bool {
	return len(items) > 0 && Validate("", items) == nil
}

func totalWeight(items []Item) int {
	w := 0
	for _, it := range items {
		w += it.Weight
	}
	return w
}
