package resource

import (
	"fmt"
	"strconv"
	"strings"
)

// ARNs in ECS's long format: arn:aws:ecs:<region>:<account>:<type>/<id...>.

func (s Scope) arn(resource string) string {
	return "arn:aws:ecs:" + s.Region + ":" + s.Account + ":" + resource
}

func (s Scope) ClusterARN(name string) string { return s.arn("cluster/" + name) }

func (s Scope) TaskDefinitionARN(family string, revision int32) string {
	return s.arn("task-definition/" + family + ":" + strconv.Itoa(int(revision)))
}

func (s Scope) ServiceARN(cluster, name string) string {
	return s.arn("service/" + cluster + "/" + name)
}

func (s Scope) TaskARN(cluster, id string) string { return s.arn("task/" + cluster + "/" + id) }

func (s Scope) ContainerInstanceARN(cluster, id string) string {
	return s.arn("container-instance/" + cluster + "/" + id)
}

func (s Scope) CapacityProviderARN(name string) string { return s.arn("capacity-provider/" + name) }

func (s Scope) TaskSetARN(cluster, service, id string) string {
	return s.arn("task-set/" + cluster + "/" + service + "/" + id)
}

func (s Scope) ContainerARN(cluster, taskID, containerID string) string {
	return s.arn("container/" + cluster + "/" + taskID + "/" + containerID)
}

// ARN is a parsed ECS ARN.
type ARN struct {
	Scope    Scope
	Type     string   // cluster, task-definition, service, task, container-instance, ...
	Resource string   // everything after "<type>/"
	Parts    []string // Resource split on "/"
}

// ParseARN parses an ECS ARN in the long (or, for tasks and instances, short) format.
func ParseARN(s string) (ARN, error) {
	f := strings.SplitN(s, ":", 6)
	if len(f) != 6 || f[0] != "arn" || f[1] == "" || f[2] != "ecs" || f[3] == "" || f[4] == "" {
		return ARN{}, fmt.Errorf("%q is not a valid ECS ARN", s)
	}
	typ, res, ok := strings.Cut(f[5], "/")
	if !ok || typ == "" || res == "" {
		return ARN{}, fmt.Errorf("%q is not a valid ECS ARN: no resource type and id", s)
	}
	return ARN{Scope: Scope{Account: f[4], Region: f[3]}, Type: typ, Resource: res, Parts: strings.Split(res, "/")}, nil
}
