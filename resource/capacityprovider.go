package resource

import (
	"time"

	"github.com/ecsd/ecsd/api/ecs"
)

// KindCapacityProvider holds capacity providers, one key per name in the scope.
const KindCapacityProvider = "capacityproviders"

// The capacity providers every cluster may use without creating them: the
// managed serverless pool, on demand and interruptible.
const (
	ProviderFargate     = "FARGATE"
	ProviderFargateSpot = "FARGATE_SPOT"
)

// IsFargateProvider reports whether name is one of the built-in Fargate providers.
func IsFargateProvider(name string) bool {
	return name == ProviderFargate || name == ProviderFargateSpot
}

// CapacityProviderKey is the key of a capacity provider record.
func (s Scope) CapacityProviderKey(name string) string { return s.Key(KindCapacityProvider, name) }

// CapacityProvider is a stored auto scaling group capacity provider (the
// Fargate ones are built in and never stored). Its autoScalingGroupArn names a
// node group (NodeGroup.ARN).
type CapacityProvider struct {
	ecs.CapacityProvider
	Scope Scope `json:"scope"`
	// NodeGroup is the name of the node group the ARN resolved to at creation.
	NodeGroup string `json:"nodeGroup"`
	// DeletedAt is set when DeleteCapacityProvider made it INACTIVE.
	DeletedAt *time.Time `json:"deletedAt,omitempty"`
	// Reservation is the last CapacityProviderReservation managed scaling
	// computed (percent), with when; read by operators and tests.
	Reservation   *float64   `json:"reservation,omitempty"`
	ReservationAt *time.Time `json:"reservationAt,omitempty"`
}

func (p *CapacityProvider) GetTags() []ecs.Tag  { return p.Tags }
func (p *CapacityProvider) SetTags(v []ecs.Tag) { p.Tags = v }

func init() {
	RegisterKind(KindCapacityProvider, func() any { return new(CapacityProvider) })
	RegisterARNType("capacity-provider", func(a ARN) (string, bool) {
		if len(a.Parts) != 1 || a.Parts[0] == "" {
			return "", false
		}
		return a.Scope.CapacityProviderKey(a.Parts[0]), true
	})
}
