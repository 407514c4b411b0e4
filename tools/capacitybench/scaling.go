package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// The node groups' template, and the reference agent's matching flags.
const (
	scalingInstanceType = "ecsd.small" // 1024 CPU, 2048 MiB
	scalingCPU          = 1024
	scalingMemory       = 2048
	scalingZone         = "us-east-1a"
	scalingFamily       = "capbench-scaling"
)

// scalingIteration is one measured RunTask on an empty node group, with the
// server's timestamps splitting it (all milliseconds after RunTask was sent).
type scalingIteration struct {
	Cluster      string
	TotalMS      float64 // RunTask → a poll sees RUNNING
	LaunchedMS   float64 // → the node's launch answered (provisioner started the agent)
	RegisteredMS float64 // → its container instance registered
	StartedMS    float64 // → the task's startedAt (the agent's RUNNING report)
}

type scalingResults struct {
	Reference []float64 // agent exec → registered and agentConnected, ms
	Measured  []scalingIteration
	Warmup    struct {
		Reference []float64
		Measured  []float64
	}
}

type scalingBench struct {
	c   config
	ecs *ecs.Client
	tag string
	seq int
}

func benchScaling(ctx context.Context, c config, client *ecs.Client) (*scalingResults, error) {
	b := &scalingBench{c: c, ecs: client, tag: strconv.FormatInt(time.Now().Unix()%100000, 36)}
	if _, err := client.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family:      aws.String(scalingFamily),
		NetworkMode: types.NetworkModeBridge,
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("main"), Image: aws.String(c.image), Cpu: 256, Memory: aws.Int32(64), Essential: aws.Bool(true),
			Command:         []string{"sleep", "600"},
			LinuxParameters: &types.LinuxParameters{InitProcessEnabled: aws.Bool(true)},
		}},
	}); err != nil {
		return nil, fmt.Errorf("RegisterTaskDefinition: %w", err)
	}
	res := &scalingResults{}
	for i := range c.warmup + c.iterations {
		warm := i < c.warmup
		ref, err := b.reference(ctx)
		if err != nil {
			return res, fmt.Errorf("reference: %w", err)
		}
		it, err := b.measured(ctx)
		if err != nil {
			return res, fmt.Errorf("node group: %w", err)
		}
		logf("scaling %d/%d%s: reference %.0f ms, node group %.0f ms (launched %.0f, registered %.0f, started %.0f)",
			i+1, c.warmup+c.iterations, map[bool]string{true: " (warm-up)"}[warm], ref, it.TotalMS, it.LaunchedMS, it.RegisteredMS, it.StartedMS)
		if warm {
			res.Warmup.Reference = append(res.Warmup.Reference, ref)
			res.Warmup.Measured = append(res.Warmup.Measured, it.TotalMS)
			continue
		}
		res.Reference = append(res.Reference, ref)
		res.Measured = append(res.Measured, *it)
	}
	return res, nil
}

// reference starts an `ecsd agent` as provisioner/local starts a node's (same
// binary, flags, environment, process group, log file), into a fresh
// cluster, and times it until its instance is registered and connected. The
// agent is then stopped by PID, deregistered and its containers removed.
func (b *scalingBench) reference(ctx context.Context) (float64, error) {
	b.seq++
	cluster := fmt.Sprintf("capbench-ref-%s-%d", b.tag, b.seq)
	if _, err := b.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		return 0, fmt.Errorf("CreateCluster: %w", err)
	}
	dataDir := filepath.Join(b.c.workDir, "ref-agents", cluster)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return 0, err
	}
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	binary, err := filepath.Abs(b.c.binary)
	if err != nil {
		return 0, err
	}
	args := []string{"agent",
		"--server", b.c.endpoint,
		"--cluster", cluster,
		"--join-token", b.c.joinToken,
		"--data-dir", dataDir,
		"--cpu", strconv.Itoa(scalingCPU),
		"--memory", strconv.Itoa(scalingMemory),
		"--instance-type", scalingInstanceType,
		"--availability-zone", scalingZone,
		"--attributes", "",
		"--tmds-port", strconv.Itoa(port),
	}
	logFile, err := os.OpenFile(filepath.Join(dataDir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer logFile.Close()
	cmd := exec.Command(binary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ECSD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Dir = dataDir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	instance := ""
	seen, werr := pollUntil(ctx, b.c.poll, 60*time.Second, "reference agent registered", func() (bool, error) {
		select {
		case err := <-exited:
			exited <- err
			return false, fmt.Errorf("agent exited: %v (log %s)", err, logFile.Name())
		default:
		}
		if instance == "" {
			l, err := b.ecs.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster)})
			if err != nil || len(l.ContainerInstanceArns) == 0 {
				return false, nil
			}
			instance = l.ContainerInstanceArns[0]
			noteInstance(b.c, instance)
		}
		d, err := b.ecs.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String(cluster), ContainerInstances: []string{instance}})
		if err != nil || len(d.ContainerInstances) != 1 {
			return false, nil
		}
		return d.ContainerInstances[0].AgentConnected, nil
	})
	lat := ms(seen.Sub(start))

	// Stop it as the provisioner would (SIGTERM, SIGKILL after 30 s).
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	if instance != "" {
		_, _ = b.ecs.DeregisterContainerInstance(ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String(cluster), ContainerInstance: aws.String(instance), Force: aws.Bool(true)})
		removeContainers(ctx, instance)
	}
	if _, err := b.ecs.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String(cluster)}); err != nil {
		logf("reference cleanup: DeleteCluster %s: %v", cluster, err)
	}
	return lat, werr
}

// measured times one RunTask on a fresh, empty node group's provider.
func (b *scalingBench) measured(ctx context.Context) (*scalingIteration, error) {
	b.seq++
	name := fmt.Sprintf("capbench-%s-%d", b.tag, b.seq)
	it := &scalingIteration{Cluster: name}
	if _, err := b.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(name)}); err != nil {
		return nil, fmt.Errorf("CreateCluster: %w", err)
	}
	var created struct {
		NodeGroup nodeGroup `json:"nodeGroup"`
	}
	if err := nodeGroupCall(ctx, b.c.endpoint, "CreateNodeGroup", map[string]any{
		"name": name, "cluster": name, "minSize": 0, "maxSize": 2, "instanceType": scalingInstanceType,
		"availabilityZones": []string{scalingZone},
	}, &created); err != nil {
		return nil, err
	}
	if _, err := b.ecs.CreateCapacityProvider(ctx, &ecs.CreateCapacityProviderInput{Name: aws.String(name),
		AutoScalingGroupProvider: &types.AutoScalingGroupProvider{AutoScalingGroupArn: aws.String(created.NodeGroup.AutoScalingGroupArn),
			ManagedScaling:               &types.ManagedScaling{Status: types.ManagedScalingStatusEnabled, TargetCapacity: aws.Int32(100)},
			ManagedTerminationProtection: types.ManagedTerminationProtectionEnabled}}); err != nil {
		return nil, fmt.Errorf("CreateCapacityProvider: %w", err)
	}
	strategy := []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String(name), Weight: 1}}
	if _, err := b.ecs.PutClusterCapacityProviders(ctx, &ecs.PutClusterCapacityProvidersInput{Cluster: aws.String(name),
		CapacityProviders: []string{name}, DefaultCapacityProviderStrategy: strategy}); err != nil {
		return nil, fmt.Errorf("PutClusterCapacityProviders: %w", err)
	}

	start := time.Now()
	rt, err := b.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(name), TaskDefinition: aws.String(scalingFamily),
		CapacityProviderStrategy: strategy})
	if err != nil {
		return nil, fmt.Errorf("RunTask: %w", err)
	}
	if len(rt.Tasks) != 1 {
		return nil, fmt.Errorf("RunTask: no task (failures %+v)", rt.Failures)
	}
	taskARN := aws.ToString(rt.Tasks[0].TaskArn)
	var task types.Task
	seen, werr := pollUntil(ctx, b.c.poll, 120*time.Second, "task RUNNING", func() (bool, error) {
		d, err := b.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(name), Tasks: []string{taskARN}})
		if err != nil || len(d.Tasks) != 1 {
			return false, nil
		}
		task = d.Tasks[0]
		switch aws.ToString(task.LastStatus) {
		case "RUNNING":
			return true, nil
		case "STOPPED":
			return false, fmt.Errorf("task stopped: %s", aws.ToString(task.StoppedReason))
		}
		return false, nil
	})
	it.TotalMS = ms(seen.Sub(start))

	// The split, from the server's records (same host, same clock).
	since := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return ms(t.Sub(start))
	}
	if task.StartedAt != nil {
		it.StartedMS = since(*task.StartedAt)
	}
	var instances []string
	if g, err := describeNodeGroup(ctx, b.c.endpoint, name); err == nil && g != nil {
		for _, n := range g.Nodes {
			if n.LaunchedAt != nil && it.LaunchedMS == 0 {
				sec := *n.LaunchedAt
				it.LaunchedMS = since(time.Unix(0, int64(sec*1e9)))
			}
			if n.ContainerInstanceArn != "" {
				instances = append(instances, n.ContainerInstanceArn)
				noteInstance(b.c, n.ContainerInstanceArn)
			}
		}
	}
	if arn := aws.ToString(task.ContainerInstanceArn); arn != "" {
		d, err := b.ecs.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String(name), ContainerInstances: []string{arn}})
		if err == nil && len(d.ContainerInstances) == 1 && d.ContainerInstances[0].RegisteredAt != nil {
			it.RegisteredMS = since(*d.ContainerInstances[0].RegisteredAt)
		}
	}

	cerr := b.cleanupGroup(ctx, name, taskARN, instances)
	return it, errors.Join(werr, cerr)
}

// cleanupGroup stops the task, scales the node group to 0 (its agents are
// stopped by the provisioner), detaches and deletes the provider, then deletes
// the empty group, the cluster and any containers left.
//
// The group is emptied before DeleteNodeGroup on purpose: deleting a group
// that still has a node can crash the server (controller/nodegroup: a
// duplicate terminate of the node finds the group record gone and
// dereferences nil; reported to the lead).
func (b *scalingBench) cleanupGroup(ctx context.Context, name, taskARN string, instances []string) error {
	cl := aws.String(name)
	if _, err := b.ecs.StopTask(ctx, &ecs.StopTaskInput{Cluster: cl, Task: aws.String(taskARN), Reason: aws.String("capacitybench")}); err != nil {
		logf("cleanup: StopTask: %v", err)
	}
	if _, err := pollUntil(ctx, 50*time.Millisecond, 60*time.Second, "task STOPPED", func() (bool, error) {
		d, err := b.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: cl, Tasks: []string{taskARN}})
		return err == nil && len(d.Tasks) == 1 && aws.ToString(d.Tasks[0].LastStatus) == "STOPPED", nil
	}); err != nil {
		logf("cleanup: %v", err)
	}
	// Managed termination protection is lifted by managed scaling once the
	// node runs nothing; only then may the group shrink.
	if _, err := pollUntil(ctx, 50*time.Millisecond, 30*time.Second, "scale-in protection lifted", func() (bool, error) {
		g, err := describeNodeGroup(ctx, b.c.endpoint, name)
		if err != nil || g == nil {
			return false, nil
		}
		for _, n := range g.Nodes {
			if n.ProtectedFromScaleIn {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		logf("cleanup: %v", err)
	}
	if _, err := b.ecs.PutClusterCapacityProviders(ctx, &ecs.PutClusterCapacityProvidersInput{Cluster: cl,
		CapacityProviders: []string{}, DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{}}); err != nil {
		return fmt.Errorf("cleanup: PutClusterCapacityProviders (detach): %w", err)
	}
	if _, err := b.ecs.DeleteCapacityProvider(ctx, &ecs.DeleteCapacityProviderInput{CapacityProvider: cl}); err != nil {
		return fmt.Errorf("cleanup: DeleteCapacityProvider: %w", err)
	}
	if err := nodeGroupCall(ctx, b.c.endpoint, "UpdateNodeGroup", map[string]any{"name": name, "minSize": 0, "desiredCapacity": 0}, nil); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	if _, err := pollUntil(ctx, 50*time.Millisecond, 60*time.Second, "node group scaled in to 0", func() (bool, error) {
		g, err := describeNodeGroup(ctx, b.c.endpoint, name)
		return err == nil && g != nil && len(g.Nodes) == 0, nil
	}); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	// Let any duplicate terminate of the removed node finish first (see above).
	time.Sleep(time.Second)
	// The group can be deleted once its provider is no longer in use.
	if _, err := pollUntil(ctx, 100*time.Millisecond, 60*time.Second, "DeleteNodeGroup", func() (bool, error) {
		err := nodeGroupCall(ctx, b.c.endpoint, "DeleteNodeGroup", map[string]any{"name": name}, nil)
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	if _, err := pollUntil(ctx, 100*time.Millisecond, 30*time.Second, "node group removed", func() (bool, error) {
		g, err := describeNodeGroup(ctx, b.c.endpoint, name)
		return err == nil && g == nil, nil
	}); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	for _, arn := range instances {
		removeContainers(ctx, arn)
	}
	if _, err := b.ecs.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: cl}); err != nil {
		logf("cleanup: DeleteCluster %s: %v", name, err)
	}
	return nil
}

func (r *scalingResults) table() string {
	var b strings.Builder
	ref := r.Reference
	var tot, launched, registered, started []float64
	for _, it := range r.Measured {
		tot = append(tot, it.TotalMS)
		launched = append(launched, it.LaunchedMS)
		registered = append(registered, it.RegisteredMS)
		started = append(started, it.StartedMS)
	}
	b.WriteString("| | samples | min | median | max |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| reference: `ecsd agent` exec → registered + agentConnected | %d | %s | %s | %s |\n",
		len(ref), fmtMS(minOf(ref)), fmtMS(pct(ref, 50)), fmtMS(maxOf(ref)))
	fmt.Fprintf(&b, "| RunTask on an empty node group → RUNNING | %d | %s | %s | %s |\n",
		len(tot), fmtMS(minOf(tot)), fmtMS(pct(tot, 50)), fmtMS(maxOf(tot)))
	diff := pct(tot, 50) - pct(ref, 50)
	fmt.Fprintf(&b, "\nmedian difference %s (goal ≤ 2,000 ms: %s), median ratio %.2f\n",
		fmtMS(diff), map[bool]string{true: "met", false: "not met"}[diff <= 2000], pct(tot, 50)/pct(ref, 50))
	fmt.Fprintf(&b, "\nsplit of the measured time (median ms after RunTask, from the server's timestamps): node launched (agent process started) %s, instance registered %s, task startedAt %s\n",
		fmtMS(pct(launched, 50)), fmtMS(pct(registered, 50)), fmtMS(pct(started, 50)))
	fmt.Fprintf(&b, "\nsamples in order (ms): reference %v; node group %v\n", round(ref), round(tot))
	fmt.Fprintf(&b, "\nwarm-up (not counted): reference %v ms, node group %v ms\n", round(r.Warmup.Reference), round(r.Warmup.Measured))
	return b.String()
}

func round(v []float64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x + 0.5)
	}
	return out
}
