package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
	"github.com/ecsd/ecsd/scheduler/simfleet"
	"github.com/ecsd/ecsd/store"
)

var scope = resource.Scope{Account: "123456789012", Region: "us-east-1"}

const clusterName = "bench"

// fleetRecords turns a simulated fleet into the container instance records
// RegisterContainerInstance would store: registered CPU, memory and reserved
// ports, ECS's and the custom attributes, ACTIVE.
func fleetRecords(n int, seed int64, now time.Time) []*resource.ContainerInstance {
	sim := simfleet.New(simfleet.Config{
		Instances: n,
		Seed:      seed,
		Cluster:   clusterName,
		Account:   scope.Account,
		Region:    scope.Region,
		Attributes: map[string][]string{
			"stack": {"prod", "prod", "prod", "staging"},
			"rack":  {"r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"},
			"team":  {"payments", "search", "ads"},
		},
	})
	out := make([]*resource.ContainerInstance, len(sim))
	for i, in := range sim {
		out[i] = record(in, now)
	}
	return out
}

func record(in scheduler.Instance, now time.Time) *resource.ContainerInstance {
	var ports []string
	for p := range in.TCPPorts {
		ports = append(ports, strconv.Itoa(int(p)))
	}
	slices.Sort(ports)
	attrs := make([]ecs.Attribute, 0, len(in.Attributes))
	for name, value := range in.Attributes {
		attrs = append(attrs, ecs.Attribute{Name: name, Value: value})
	}
	slices.SortFunc(attrs, func(a, b ecs.Attribute) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return &resource.ContainerInstance{
		ContainerInstance: ecs.ContainerInstance{
			ContainerInstanceArn: scope.ContainerInstanceARN(clusterName, in.ID),
			Ec2InstanceId:        in.EC2InstanceID,
			Status:               resource.InstanceActive,
			RegisteredAt:         ecs.NewTime(now),
			RegisteredResources: []ecs.Resource{
				{Name: "CPU", Type: "INTEGER", IntegerValue: int32(in.CPU)},
				{Name: "MEMORY", Type: "INTEGER", IntegerValue: int32(in.Memory)},
				{Name: "PORTS", Type: "STRINGSET", StringSetValue: ports},
				{Name: "PORTS_UDP", Type: "STRINGSET", StringSetValue: []string{}},
			},
			Attributes:  attrs,
			VersionInfo: &ecs.VersionInfo{AgentVersion: in.AgentVersion, DockerVersion: "20.10.24"},
		},
		Scope:   scope,
		Cluster: clusterName,
		ID:      in.ID,
	}
}

// loadFleet writes the cluster and its instances in transactions of perTxn
// puts, and returns when the cache shows them.
func loadFleet(ctx context.Context, b *bench, recs []*resource.ContainerInstance, perTxn int) error {
	cl := &resource.Cluster{Scope: scope}
	cl.ClusterName = clusterName
	cl.ClusterArn = scope.ClusterARN(clusterName)
	cl.Status = "ACTIVE"
	rev, err := b.st.Txn(ctx, store.Put(scope.ClusterKey(clusterName), resource.Encode(cl)))
	if err != nil {
		return fmt.Errorf("store cluster: %w", err)
	}
	for start := 0; start < len(recs); start += perTxn {
		ops := make([]store.Op, 0, perTxn)
		for _, ci := range recs[start:min(start+perTxn, len(recs))] {
			ops = append(ops, store.Put(scope.ContainerInstanceKey(clusterName, ci.ID), resource.Encode(ci)))
		}
		if rev, err = b.st.Txn(ctx, ops...); err != nil {
			return fmt.Errorf("store instances %d..%d: %w", start, start+len(ops), err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return b.cache.WaitFor(wctx, rev)
}
