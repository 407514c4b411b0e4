package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/internal/testimage"
)

// ngGroup is what the test reads of `ecsd nodegroup` output.
type ngGroup struct {
	Name                string `json:"name"`
	AutoScalingGroupArn string `json:"autoScalingGroupArn"`
	Status              string `json:"status"`
	DesiredCapacity     int    `json:"desiredCapacity"`
	Nodes               []struct {
		ID                   string `json:"id"`
		State                string `json:"state"`
		AvailabilityZone     string `json:"availabilityZone"`
		ContainerInstanceArn string `json:"containerInstanceArn"`
		LastError            string `json:"lastError"`
	} `json:"nodes"`
}

// TestNodeGroupLocalProvisioner drives a node group end to end with the real
// binary: `ecsd server --provisioner local` and the `ecsd nodegroup` CLI. The
// group scales out to two `ecsd agent` processes that register in the cluster
// as the group's nodes; scaled to zero, the idle node is terminated and
// deregistered while the node running a task stays until the task stops.
func TestNodeGroupLocalProvisioner(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped in -short mode")
	}
	t.Parallel()
	placementNeedDocker(t)
	const account = "111122223333"
	cluster := "e2e-ng-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)

	var instances []string
	t.Cleanup(func() { placementRemoveContainers(t, instances) })
	p := startECSD(t, ecsdOpts{Mode: "server", Env: []string{
		"ECSD_ACCESS_KEY_ID=test", "ECSD_SECRET_ACCESS_KEY=test", "ECSD_ACCOUNT_ID=" + account,
	}, Args: []string{"--provisioner", "local"}})
	sdk := testenv.NewClient(p.URL, "test", "test", "us-east-1")
	ctx := context.Background()
	cliEnv := append(baseEnv(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "ECSD_ENDPOINT="+p.URL)
	ng := func(out any, args ...string) error {
		t.Helper()
		s, err := run(t, time.Minute, ".", cliEnv, ecsdBin, append([]string{"nodegroup"}, args...)...)
		if err != nil {
			return fmt.Errorf("%v: %s", err, s)
		}
		if out != nil {
			return json.Unmarshal([]byte(s), out)
		}
		return nil
	}
	describe := func() (*ngGroup, error) {
		var out struct {
			NodeGroups []ngGroup `json:"nodeGroups"`
		}
		if err := ng(&out, "describe", "workers"); err != nil {
			return nil, err
		}
		if len(out.NodeGroups) != 1 {
			return nil, nil
		}
		return &out.NodeGroups[0], nil
	}

	if _, err := sdk.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		t.Fatal(err)
	}
	// A client error comes back typed.
	if err := ng(nil, "create", "workers", "--cluster", cluster, "--min", "0", "--max", "3", "--desired", "4"); err == nil || !strings.Contains(err.Error(), "InvalidParameterException: desiredCapacity") {
		t.Fatalf("desired > max: %v", err)
	}
	var created struct{ NodeGroup ngGroup }
	if err := ng(&created, "create", "workers", "--cluster", cluster, "--min", "0", "--max", "3", "--desired", "2",
		"--instance-type", "ecsd.small", "--availability-zones", "us-east-1a,us-east-1b", "--attributes", "pool=workers"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(created.NodeGroup.AutoScalingGroupArn, ":autoScalingGroup:") || created.NodeGroup.DesiredCapacity != 2 {
		t.Fatalf("created: %+v", created.NodeGroup)
	}

	// Two agents start and register as the group's nodes.
	byNode := map[string]string{} // container instance ARN → node id
	placementEventually(t, 90*time.Second, "two nodes in service", func() string {
		g, err := describe()
		if err != nil || g == nil {
			return fmt.Sprintf("describe: %v", err)
		}
		clear(byNode)
		for _, n := range g.Nodes {
			if n.State != "InService" {
				return fmt.Sprintf("node %s is %s (%s)", n.ID, n.State, n.LastError)
			}
			byNode[n.ContainerInstanceArn] = n.ID
		}
		if len(byNode) != 2 {
			return fmt.Sprintf("%d nodes in service", len(byNode))
		}
		return ""
	})
	var arns []string
	placementEventually(t, 30*time.Second, "the nodes' instances registered and connected", func() string {
		ci, err := sdk.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster)})
		if err != nil || len(ci.ContainerInstanceArns) != 2 {
			return fmt.Sprintf("instances %v err %v", ci, err)
		}
		d, err := sdk.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String(cluster), ContainerInstances: ci.ContainerInstanceArns})
		if err != nil {
			return err.Error()
		}
		zones := map[string]bool{}
		for _, c := range d.ContainerInstances {
			if byNode[aws.ToString(c.ContainerInstanceArn)] == "" {
				return "instance " + aws.ToString(c.ContainerInstanceArn) + " is no node of the group"
			}
			if !c.AgentConnected {
				return "an agent is not connected yet"
			}
			attrs := map[string]string{}
			for _, a := range c.Attributes {
				attrs[aws.ToString(a.Name)] = aws.ToString(a.Value)
			}
			if attrs["pool"] != "workers" || attrs["ecs.instance-type"] != "ecsd.small" {
				return fmt.Sprintf("template attributes missing: %v", attrs)
			}
			zones[attrs["ecs.availability-zone"]] = true
			for _, r := range c.RegisteredResources {
				if aws.ToString(r.Name) == "CPU" && r.IntegerValue != 1024 {
					return fmt.Sprintf("CPU %d, want ecsd.small's 1024", r.IntegerValue)
				}
			}
		}
		if !zones["us-east-1a"] || !zones["us-east-1b"] {
			return fmt.Sprintf("zones %v: want one node in each", zones)
		}
		arns = ci.ContainerInstanceArns
		return ""
	})
	instances = arns

	// A task on the first node.
	busy, idle := arns[0], arns[1]
	const family = "e2e-ng"
	if _, err := sdk.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), NetworkMode: types.NetworkModeBridge,
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("sleep"), Image: aws.String(testimage.Busybox),
			Memory: aws.Int32(16), Essential: aws.Bool(true), Command: []string{"sleep", "3600"}, StopTimeout: aws.Int32(2),
			LinuxParameters: &types.LinuxParameters{InitProcessEnabled: aws.Bool(true)}}},
	}); err != nil {
		t.Fatal(err)
	}
	st, err := sdk.StartTask(ctx, &ecs.StartTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String(family), ContainerInstances: []string{busy}})
	if err != nil || len(st.Tasks) != 1 {
		t.Fatalf("start-task: %v %+v", err, st)
	}
	task := aws.ToString(st.Tasks[0].TaskArn)
	placementEventually(t, 60*time.Second, "task RUNNING", func() string {
		d, err := sdk.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{task}})
		if err != nil || len(d.Tasks) != 1 {
			return fmt.Sprint(err)
		}
		if s := aws.ToString(d.Tasks[0].LastStatus); s != "RUNNING" {
			return s
		}
		return ""
	})

	instanceStatus := func(arn string) string {
		d, err := sdk.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String(cluster), ContainerInstances: []string{arn}})
		if err != nil || len(d.ContainerInstances) != 1 {
			return fmt.Sprintf("describe: %v %+v", err, d)
		}
		return aws.ToString(d.ContainerInstances[0].Status)
	}

	// Scale to zero: the idle node goes, the busy one stays.
	if err := ng(nil, "update", "workers", "--desired", "0"); err != nil {
		t.Fatal(err)
	}
	placementEventually(t, 60*time.Second, "the idle node terminated and deregistered", func() string {
		g, err := describe()
		if err != nil || g == nil {
			return fmt.Sprintf("describe: %v", err)
		}
		if len(g.Nodes) != 1 || g.Nodes[0].ContainerInstanceArn != busy {
			return fmt.Sprintf("nodes %+v", g.Nodes)
		}
		if s := instanceStatus(idle); s != "INACTIVE" {
			return "idle instance " + s
		}
		return ""
	})
	time.Sleep(5 * time.Second) // a few controller passes
	if g, err := describe(); err != nil || g == nil || len(g.Nodes) != 1 || g.Nodes[0].State != "InService" {
		t.Fatalf("the node running a task was touched: %+v %v", g, err)
	}
	if s := instanceStatus(busy); s != "ACTIVE" {
		t.Fatalf("busy instance is %s", s)
	}
	var list struct {
		NodeGroups []struct {
			Name  string `json:"name"`
			Nodes int    `json:"nodes"`
		} `json:"nodeGroups"`
	}
	if err := ng(&list, "list"); err != nil || len(list.NodeGroups) != 1 || list.NodeGroups[0].Nodes != 1 {
		t.Fatalf("list: %+v %v", list, err)
	}

	// Once the task stops, the last node goes too.
	if _, err := sdk.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(cluster), Task: aws.String(task)}); err != nil {
		t.Fatal(err)
	}
	placementEventually(t, 60*time.Second, "the last node terminated", func() string {
		g, err := describe()
		if err != nil || g == nil {
			return fmt.Sprintf("describe: %v", err)
		}
		if len(g.Nodes) != 0 {
			return fmt.Sprintf("nodes %+v", g.Nodes)
		}
		if s := instanceStatus(busy); s != "INACTIVE" {
			return "instance " + s
		}
		return ""
	})

	// Delete: the record goes.
	if err := ng(nil, "delete", "workers"); err != nil {
		t.Fatal(err)
	}
	placementEventually(t, 30*time.Second, "the group deleted", func() string {
		var out struct {
			Failures []struct{ Reason string } `json:"failures"`
		}
		if err := ng(&out, "describe", "workers"); err != nil {
			return err.Error()
		}
		if len(out.Failures) != 1 || out.Failures[0].Reason != "MISSING" {
			return fmt.Sprintf("%+v", out)
		}
		return ""
	})
}
