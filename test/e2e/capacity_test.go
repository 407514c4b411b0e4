package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/ecsd/ecsd/internal/signedpost"
	"net/http"
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

// capacityCall makes a signed JSON 1.1 call with an X-Amz-Target outside the
// ECS SDK (ecsd's node group API).
func capacityCall(t *testing.T, url, target string, in, out any) error {
	t.Helper()
	body, _ := json.Marshal(in)
	status, b, err := signedpost.Do(context.Background(), signedpost.Request{URL: url + "/", Target: target, Body: body,
		Credentials: aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, Region: "us-east-1"})
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s: %d %s", target, status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

type capacityNodeGroup struct {
	Name                string `json:"name"`
	AutoScalingGroupArn string `json:"autoScalingGroupArn"`
	DesiredCapacity     int    `json:"desiredCapacity"`
	Nodes               []struct {
		ID                   string `json:"id"`
		State                string `json:"state"`
		ContainerInstanceArn string `json:"containerInstanceArn"`
		ProtectedFromScaleIn bool   `json:"protectedFromScaleIn"`
	} `json:"nodes"`
}

func capacityDescribeGroup(t *testing.T, url, name string) capacityNodeGroup {
	t.Helper()
	var out struct {
		NodeGroups []capacityNodeGroup `json:"nodeGroups"`
	}
	if err := capacityCall(t, url, nodeGroupTarget+".DescribeNodeGroups", map[string]any{"names": []string{name}}, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.NodeGroups) != 1 {
		t.Fatalf("node group %s not described: %+v", name, out)
	}
	return out.NodeGroups[0]
}

// TestCapacityProviderManagedScaling is issue 6's node-group proof: a
// service of 6 tasks on a capacity provider whose node group has no
// instances; managed scaling grows the group through the local provisioner
// (real `ecsd agent` processes), the service becomes steady; at desired 0 the
// group shrinks, but never removes the instance that still runs a task.
func TestCapacityProviderManagedScaling(t *testing.T) {
	agentNeedDocker(t)
	cluster := "e2e-cap-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	p := startECSD(t, ecsdOpts{Mode: "server", Env: []string{
		"ECSD_ACCESS_KEY_ID=test", "ECSD_SECRET_ACCESS_KEY=test",
	}, Args: []string{"--provisioner", "local"}})
	sdk := testenv.NewClient(p.URL, "test", "test", "us-east-1")
	ctx := context.Background()
	var instances []string
	t.Cleanup(func() { placementRemoveContainers(t, instances) })

	if _, err := sdk.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		t.Fatal(err)
	}
	var created struct {
		NodeGroup capacityNodeGroup `json:"nodeGroup"`
	}
	if err := capacityCall(t, p.URL, nodeGroupTarget+".CreateNodeGroup", map[string]any{
		"name": "ng", "cluster": cluster, "minSize": 0, "maxSize": 4, "instanceType": "ecsd.small",
	}, &created); err != nil {
		t.Fatal(err)
	}
	if _, err := sdk.CreateCapacityProvider(ctx, &ecs.CreateCapacityProviderInput{Name: aws.String("ngcp"),
		AutoScalingGroupProvider: &types.AutoScalingGroupProvider{AutoScalingGroupArn: aws.String(created.NodeGroup.AutoScalingGroupArn),
			ManagedScaling:               &types.ManagedScaling{Status: types.ManagedScalingStatusEnabled, TargetCapacity: aws.Int32(100)},
			ManagedTerminationProtection: types.ManagedTerminationProtectionEnabled}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sdk.PutClusterCapacityProviders(ctx, &ecs.PutClusterCapacityProvidersInput{Cluster: aws.String(cluster),
		CapacityProviders:               []string{"ngcp"},
		DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("ngcp"), Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	// ecsd.small offers 1024 CPU: two 512-CPU tasks per instance, so 6 tasks need 3.
	if _, err := sdk.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("cap-web"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(testimage.Busybox),
			Cpu: 512, Memory: aws.Int32(64), Essential: aws.Bool(true), Command: []string{"sleep", "3600"},
			LinuxParameters: &types.LinuxParameters{InitProcessEnabled: aws.Bool(true)}}}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := sdk.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(cluster), ServiceName: aws.String("web"),
		TaskDefinition: aws.String("cap-web"), DesiredCount: aws.Int32(6)}); err != nil {
		t.Fatal(err)
	}
	// The tasks wait in PROVISIONING (not failed) while the group grows.
	lt, err := sdk.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(cluster)})
	if err == nil && len(lt.TaskArns) > 0 {
		d, _ := sdk.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: lt.TaskArns})
		for _, tk := range d.Tasks {
			if aws.ToString(tk.CapacityProviderName) != "ngcp" {
				t.Errorf("task capacity provider %q", aws.ToString(tk.CapacityProviderName))
			}
		}
	}
	w := ecs.NewServicesStableWaiter(sdk, func(o *ecs.ServicesStableWaiterOptions) { o.MinDelay, o.MaxDelay = time.Second, 2*time.Second })
	if err := w.Wait(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{"web"}}, 150*time.Second); err != nil {
		t.Fatalf("service not stable: %v", err)
	}
	t.Logf("0 → 6 tasks on an empty node group, stable in %s", time.Since(start).Round(100*time.Millisecond))
	ci, err := sdk.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster)})
	if err != nil {
		t.Fatal(err)
	}
	instances = ci.ContainerInstanceArns
	if len(ci.ContainerInstanceArns) != 3 {
		t.Errorf("the group launched %d instances for 6 tasks of half an instance each; want 3", len(ci.ContainerInstanceArns))
	}
	dci, err := sdk.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String(cluster), ContainerInstances: ci.ContainerInstanceArns})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range dci.ContainerInstances {
		if aws.ToString(in.CapacityProviderName) != "ngcp" {
			t.Errorf("instance %s capacity provider %q", aws.ToString(in.ContainerInstanceArn), aws.ToString(in.CapacityProviderName))
		}
	}

	// Managed scaling's reservation is published (100: as many instances as needed).
	placementEventually(t, 30*time.Second, "the reservation metric", func() string {
		status, body, err := httpDo(http.MethodGet, p.URL+"/metrics")
		want := `ecsd_capacity_provider_reservation_percent{account="000000000000",capacity_provider="ngcp",region="us-east-1"} 100`
		if err != nil || status != http.StatusOK || !strings.Contains(string(body), want) {
			return fmt.Sprintf("%d %v: no %s", status, err, want)
		}
		return ""
	})

	// One standalone task keeps one instance busy; the service goes to 0.
	rt, err := sdk.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String("cap-web")})
	if err != nil || len(rt.Tasks) != 1 {
		t.Fatalf("run task: %v %+v", err, rt)
	}
	standalone := rt.Tasks[0]
	placementEventually(t, 60*time.Second, "standalone task RUNNING", func() string {
		d, err := sdk.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{aws.ToString(standalone.TaskArn)}})
		if err != nil || len(d.Tasks) != 1 || aws.ToString(d.Tasks[0].LastStatus) != "RUNNING" {
			return fmt.Sprintf("%v %+v", err, d)
		}
		standalone = d.Tasks[0]
		return ""
	})
	if _, err := sdk.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String("web"), DesiredCount: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	placementEventually(t, 120*time.Second, "the group shrinks to the one busy instance", func() string {
		g := capacityDescribeGroup(t, p.URL, "ng")
		if g.DesiredCapacity != 1 || len(g.Nodes) != 1 {
			return fmt.Sprintf("desired %d, nodes %+v", g.DesiredCapacity, g.Nodes)
		}
		if g.Nodes[0].ContainerInstanceArn != aws.ToString(standalone.ContainerInstanceArn) || !g.Nodes[0].ProtectedFromScaleIn {
			return fmt.Sprintf("the remaining node %+v is not the busy, protected one (%s)", g.Nodes[0], aws.ToString(standalone.ContainerInstanceArn))
		}
		return ""
	})
	d, err := sdk.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{aws.ToString(standalone.TaskArn)}})
	if err != nil || aws.ToString(d.Tasks[0].LastStatus) != "RUNNING" {
		t.Fatalf("the standalone task did not survive scale-in: %v %+v", err, d)
	}
	// Once it stops, the last instance goes too.
	if _, err := sdk.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(cluster), Task: standalone.TaskArn}); err != nil {
		t.Fatal(err)
	}
	placementEventually(t, 120*time.Second, "the group scales in to 0", func() string {
		g := capacityDescribeGroup(t, p.URL, "ng")
		if g.DesiredCapacity != 0 || len(g.Nodes) != 0 {
			return fmt.Sprintf("desired %d, nodes %+v", g.DesiredCapacity, g.Nodes)
		}
		return ""
	})
	cp, err := sdk.DescribeCapacityProviders(ctx, &ecs.DescribeCapacityProvidersInput{CapacityProviders: []string{"ngcp"}})
	if err != nil || len(cp.CapacityProviders) != 1 {
		t.Fatalf("describe provider: %v %+v", err, cp)
	}
}
