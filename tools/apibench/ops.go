package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
)

const (
	benchCluster = "bench"
	// readFamily holds the revisions Describe/List read. Registrations go to
	// other families, so the read data stays the same size whichever order the
	// ops run in (ListTaskDefinitions filters by family).
	readFamily = "bench"
)

// slot is where a call runs: the cell's concurrency and the worker's index.
type slot struct{ Clients, Worker int }

// An operation is one SDK call.
type operation func(ctx context.Context, c *ecs.Client, s slot) error

var defaultOps = []string{"RegisterTaskDefinition", "DescribeTaskDefinition", "DescribeClusters", "ListTaskDefinitions"}

// perWorker marks ops whose request differs between workers (raw mode then
// captures one request per worker).
var perWorker = map[string]bool{"RegisterTaskDefinition": true}

var opTable = map[string]operation{
	// Each client registers its own family, fresh in each cell: many
	// pipelines registering their services at once, the usual shape of
	// concurrent registrations.
	"RegisterTaskDefinition": func(ctx context.Context, c *ecs.Client, s slot) error {
		_, err := c.RegisterTaskDefinition(ctx, taskDefinition(fmt.Sprintf("bench-write-c%d-w%d", s.Clients, s.Worker)))
		return err
	},
	// All clients register revisions of one family (fresh in each cell): the
	// contended case, where revisions must be numbered one after another.
	"RegisterTaskDefinitionSameFamily": func(ctx context.Context, c *ecs.Client, s slot) error {
		_, err := c.RegisterTaskDefinition(ctx, taskDefinition(fmt.Sprintf("bench-shared-c%d", s.Clients)))
		return err
	},
	"DescribeTaskDefinition": func(ctx context.Context, c *ecs.Client, _ slot) error {
		out, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(readFamily)})
		if err == nil && out.TaskDefinition == nil {
			err = errors.New("no taskDefinition in the answer")
		}
		return err
	},
	"DescribeClusters": func(ctx context.Context, c *ecs.Client, _ slot) error {
		out, err := c.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{benchCluster}})
		if err == nil && len(out.Clusters) != 1 {
			err = fmt.Errorf("%d clusters, %d failures in the answer", len(out.Clusters), len(out.Failures))
		}
		return err
	},
	"ListTaskDefinitions": func(ctx context.Context, c *ecs.Client, _ slot) error {
		out, err := c.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(readFamily)})
		if err == nil && len(out.TaskDefinitionArns) == 0 {
			err = errors.New("no task definitions listed")
		}
		return err
	},
}

// opNames lists every known op, defaults first.
func opNames() []string {
	names := slices.Clone(defaultOps)
	for name := range opTable {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

// taskDefinition is a small but realistic EC2 task definition: one container
// with limits, a port mapping, environment and a health check.
func taskDefinition(family string) *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family:                  aws.String(family),
		NetworkMode:             types.NetworkModeBridge,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityEc2},
		ContainerDefinitions: []types.ContainerDefinition{{
			Name:         aws.String("app"),
			Image:        aws.String("public.ecr.aws/docker/library/busybox:latest"),
			Cpu:          128,
			Memory:       aws.Int32(256),
			Essential:    aws.Bool(true),
			Command:      []string{"httpd", "-f", "-p", "8080"},
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080), HostPort: aws.Int32(0), Protocol: types.TransportProtocolTcp}},
			Environment:  []types.KeyValuePair{{Name: aws.String("MODE"), Value: aws.String("bench")}},
			HealthCheck: &types.HealthCheck{
				Command:  []string{"CMD-SHELL", "wget -q -O- http://127.0.0.1:8080/ || exit 1"},
				Interval: aws.Int32(10), Timeout: aws.Int32(5), Retries: aws.Int32(3),
			},
		}},
		Tags: []types.Tag{{Key: aws.String("bench"), Value: aws.String("apibench")}},
	}
}

// setup gives the read benchmarks data: cluster "bench" and a few revisions of
// family "bench" (when a measured op reads task definitions). It fails loudly if
// the target does not serve these calls.
func setup(ctx context.Context, t *target, ops []string, revisions int) error {
	if _, err := t.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(benchCluster)}); err != nil {
		return fmt.Errorf("CreateCluster: %w", err)
	}
	if slices.Contains(ops, "DescribeTaskDefinition") || slices.Contains(ops, "ListTaskDefinitions") {
		for i := 0; i < max(1, revisions); i++ {
			if _, err := t.ecs.RegisterTaskDefinition(ctx, taskDefinition(readFamily)); err != nil {
				return fmt.Errorf("RegisterTaskDefinition: %w", err)
			}
		}
	}
	// Each op once, so a target that answers setup but not a measured call is
	// reported before minutes of benchmark.
	for _, name := range ops {
		if err := opTable[name](ctx, t.ecs, slot{Clients: 0, Worker: 0}); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// errorKey shortens an SDK error to its API code (or a generic class) so the
// report can count errors by kind.
func errorKey(err error) string {
	var he *httpStatusError
	if errors.As(err, &he) {
		return fmt.Sprintf("HTTP %d %s", he.code, he.typ)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	// Transport failures: the innermost cause ("connection reset by peer",
	// "EOF", ...) without addresses, so equal failures count together.
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return "transport: " + msg
}
