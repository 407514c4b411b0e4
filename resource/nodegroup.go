package resource

import (
	"fmt"
	"strings"
	"time"
)

// A node group is ecsd's Auto Scaling group: a set of machines (container
// instances) of one template, kept at a desired count between min and max by
// a provisioner. Its ARN has the Auto Scaling group shape, so a capacity
// provider's autoScalingGroupArn can name it.

// KindNodeGroup holds node groups, one key per name in the scope.
const KindNodeGroup = "nodegroups"

// NodeGroupKey is the key of a node group record.
func (s Scope) NodeGroupKey(name string) string { return s.Key(KindNodeGroup, name) }

// NodeGroupARN is the group's ARN in the Auto Scaling group format.
func (s Scope) NodeGroupARN(id, name string) string {
	return "arn:aws:autoscaling:" + s.Region + ":" + s.Account + ":autoScalingGroup:" + id + ":autoScalingGroupName/" + name
}

// ParseNodeGroupARN returns the scope and group name an Auto Scaling group
// ARN names.
func ParseNodeGroupARN(arn string) (Scope, string, error) {
	f := strings.SplitN(arn, ":", 8)
	if len(f) != 8 || f[0] != "arn" || f[2] != "autoscaling" || f[3] == "" || f[4] == "" || f[5] != "autoScalingGroup" {
		return Scope{}, "", fmt.Errorf("%q is not an Auto Scaling group ARN", arn)
	}
	name, ok := strings.CutPrefix(f[7], "autoScalingGroupName/")
	if !ok || name == "" {
		return Scope{}, "", fmt.Errorf("%q is not an Auto Scaling group ARN: no autoScalingGroupName", arn)
	}
	return Scope{Account: f[4], Region: f[3]}, name, nil
}

// NodeGroupDeleting is the Status of a group being deleted (its nodes drain,
// then the record goes).
const NodeGroupDeleting = "Delete in progress"

// Node lifecycle states within a group.
const (
	NodePending     = "Pending"     // the provisioner was asked for it; its agent has not registered yet
	NodeInService   = "InService"   // its agent registered a container instance
	NodeTerminating = "Terminating" // chosen for removal; the provisioner is removing it
)

// NodeTemplate is what every node of a group looks like.
type NodeTemplate struct {
	InstanceType string `json:"instanceType"`
	// CPU units and memory MiB each node offers (from the instance type, or given).
	CPU    int   `json:"cpu"`
	Memory int64 `json:"memory"`
	// AvailabilityZones are used in turn for new nodes.
	AvailabilityZones []string `json:"availabilityZones,omitempty"`
	// Attributes are custom container instance attributes every node gets.
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Node is one machine of a group.
type Node struct {
	// ID is the group-unique id given to the provisioner and the agent
	// (--node-id); the provisioner's own handle is ProviderID.
	ID                   string    `json:"id"`
	ProviderID           string    `json:"providerId,omitempty"`
	State                string    `json:"state"`
	AvailabilityZone     string    `json:"availabilityZone,omitempty"`
	LaunchedAt           time.Time `json:"launchedAt"`
	ContainerInstanceArn string    `json:"containerInstanceArn,omitempty"`
	// ProtectedFromScaleIn is set by managed termination protection while the
	// node runs non-daemon tasks.
	ProtectedFromScaleIn bool `json:"protectedFromScaleIn,omitempty"`
	// LastError is the provisioner's last failure for this node.
	LastError string `json:"lastError,omitempty"`
}

// NodeGroup is a stored node group.
type NodeGroup struct {
	Scope Scope  `json:"scope"`
	Name  string `json:"name"`
	ID    string `json:"id"`
	ARN   string `json:"arn"`
	// Cluster is the ECS cluster the group's agents join.
	Cluster  string       `json:"cluster"`
	Min      int          `json:"min"`
	Max      int          `json:"max"`
	Desired  int          `json:"desired"`
	Template NodeTemplate `json:"template"`
	Nodes    []Node       `json:"nodes,omitempty"`
	// NextNode numbers node ids (<group>-<n>), never reused.
	NextNode  int       `json:"nextNode"`
	CreatedAt time.Time `json:"createdAt"`
	// Status is "" (active) or "Delete in progress" while the group drains.
	Status string `json:"status,omitempty"`
	// ForceDelete is set by DeleteNodeGroup with forceDelete: the group's
	// nodes are removed even while they run tasks.
	ForceDelete bool `json:"forceDelete,omitempty"`
	// LastScalingAt is when desired last changed (warm-up and cooldown).
	LastScalingAt *time.Time `json:"lastScalingAt,omitempty"`
}

func init() {
	RegisterKind(KindNodeGroup, func() any { return new(NodeGroup) })
}
