package resource

import (
	"time"

	"github.com/ecsd/ecsd/api/ecs"
)

// Cluster is a stored cluster: the API shape plus when it went INACTIVE.
// Counts in the shape are not stored; they are computed from the cache on read.
type Cluster struct {
	ecs.Cluster
	// Scope the cluster belongs to (not on the wire).
	Scope Scope `json:"scope"`
	// DeletedAt is set when DeleteCluster made it INACTIVE; collected later.
	DeletedAt *time.Time `json:"deletedAt,omitempty"`
}

// Family counts the revisions ever registered for a task definition family, so a
// revision number is never reused even after the revision itself is deleted.
type Family struct {
	Name           string `json:"name"`
	LatestRevision int32  `json:"latestRevision"`
}

// TaskDefinition is one stored revision with its tags (which DescribeTaskDefinition
// returns beside, not inside, the definition).
type TaskDefinition struct {
	ecs.TaskDefinition
	Scope Scope     `json:"scope"`
	Tags  []ecs.Tag `json:"tags,omitempty"`
}

// AccountSetting is one setting for a principal ARN, or the account default when
// PrincipalArn is empty.
type AccountSetting struct {
	ecs.Setting
	Scope Scope `json:"scope"`
}

// Idempotency remembers a create request's client token, the hash of its
// parameters and what it produced, so a retried request returns the same result.
type Idempotency struct {
	Operation string    `json:"operation"`
	Hash      string    `json:"hash"`
	Result    []byte    `json:"result"`
	CreatedAt time.Time `json:"createdAt"`
}
