package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/auth"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
	"github.com/ecsd/ecsd/store/etcd"
)

// clusterFakeMember stands in for the services, tasks and container instances that
// do not exist yet: it is decoded by this test's own cache decoder, so the
// package-wide kind registry is left alone.
type clusterFakeMember struct {
	Cluster string         `json:"cluster"`
	What    resource.Count `json:"what"`
	Launch  ecs.LaunchType `json:"launch"`
}

func (f *clusterFakeMember) ClusterName() string                        { return f.Cluster }
func (f *clusterFakeMember) CountsAs() (resource.Count, ecs.LaunchType) { return f.What, f.Launch }

var _ resource.ClusterMember = (*clusterFakeMember)(nil)

func clusterFakeDecode(key string, value []byte) (any, error) {
	if _, kind, _, ok := resource.SplitKey(key); ok && slices.Contains(resource.MemberKinds, kind) {
		f := new(clusterFakeMember)
		return f, json.Unmarshal(value, f)
	}
	return resource.Decode(key, value)
}

type clusterHarness struct {
	srv   *Server
	st    store.Store
	scope resource.Scope
}

func startClusterHarness(t *testing.T) *clusterHarness {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := etcd.Open(ctx, etcd.Config{DataDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatalf("open etcd: %v", err)
	}
	c := cache.New(st, resource.Root, clusterFakeDecode, log)
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done; st.Close() })
	select {
	case <-c.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("cache not ready")
	}
	srv, err := New(Config{Logger: log}, st, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &clusterHarness{srv: srv, st: st, scope: resource.Scope{Account: "123456789012", Region: "us-east-1"}}
}

func (h *clusterHarness) call() *Call {
	return &Call{ctx: context.Background(), Op: "test",
		Identity: auth.Identity{Account: h.scope.Account, Region: h.scope.Region, Principal: "arn:aws:iam::123456789012:root"},
		Now:      time.Now().UTC(), s: h.srv}
}

func (h *clusterHarness) putMember(t *testing.T, kind, cluster, id string, what resource.Count, lt ecs.LaunchType) {
	t.Helper()
	c := h.call()
	if _, err := c.Commit(store.Put(h.scope.Key(kind, cluster, id), resource.Encode(&clusterFakeMember{Cluster: cluster, What: what, Launch: lt}))); err != nil {
		t.Fatal(err)
	}
}

func clusterErrCode(err error) string {
	var e *ecs.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestClusterInternals(t *testing.T) {
	h := startClusterHarness(t)

	t.Run("resolveCluster creates the default cluster only when asked", func(t *testing.T) {
		c := h.call()
		if _, err := h.srv.resolveCluster(c, "", false); clusterErrCode(err) != ecs.CodeClusterNotFound {
			t.Fatalf("without createDefault: want ClusterNotFoundException, got %v", err)
		}
		if _, err := h.srv.resolveCluster(c, "other", true); clusterErrCode(err) != ecs.CodeClusterNotFound {
			t.Fatalf("createDefault of a non-default name: want ClusterNotFoundException, got %v", err)
		}
		rec, err := h.srv.resolveCluster(c, "", true)
		if err != nil {
			t.Fatal(err)
		}
		if rec.ClusterName != "default" || rec.Status != "ACTIVE" || rec.ClusterArn != "arn:aws:ecs:us-east-1:123456789012:cluster/default" {
			t.Fatalf("default cluster: %+v", rec.Cluster)
		}
		if !slices.Equal(rec.Settings, []ecs.ClusterSetting{{Name: "containerInsights", Value: "disabled"}}) {
			t.Fatalf("default cluster settings: %+v", rec.Settings)
		}
		// By name and by ARN, without createDefault, it is now found.
		for _, ref := range []string{"default", "arn:aws:ecs:us-east-1:123456789012:cluster/default"} {
			if got, err := h.srv.resolveCluster(c, ref, false); err != nil || got.ClusterName != "default" {
				t.Fatalf("resolve %q: %v %v", ref, got, err)
			}
		}
	})

	t.Run("resolveCluster recreates an INACTIVE default cluster", func(t *testing.T) {
		c := h.call()
		if _, err := h.srv.deleteCluster(c, &ecs.DeleteClusterRequest{Cluster: "default"}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.srv.resolveCluster(c, "default", false); clusterErrCode(err) != ecs.CodeClusterNotFound {
			t.Fatalf("INACTIVE cluster: want ClusterNotFoundException, got %v", err)
		}
		rec, err := h.srv.resolveCluster(c, "default", true)
		if err != nil || rec.Status != "ACTIVE" || rec.DeletedAt != nil {
			t.Fatalf("recreated default: %+v %v", rec, err)
		}
	})

	t.Run("concurrent default creation settles on one cluster", func(t *testing.T) {
		c := h.call()
		if _, err := h.srv.deleteCluster(c, &ecs.DeleteClusterRequest{Cluster: "default"}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		revs := make([]int64, 8)
		errs := make([]error, 8)
		for i := range revs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, revs[i], errs[i] = h.srv.resolveClusterRev(h.call(), "", true)
			}()
		}
		wg.Wait()
		for i := range revs {
			if errs[i] != nil {
				t.Fatalf("creator %d: %v", i, errs[i])
			}
			if revs[i] != revs[0] {
				t.Fatalf("creators saw different cluster revisions: %v", revs)
			}
		}
	})

	t.Run("cluster references", func(t *testing.T) {
		for ref, want := range map[string]string{
			"": "default", "a_b-C9": "a_b-C9",
			"arn:aws:ecs:us-east-1:123456789012:cluster/x": "x",
		} {
			if got, err := parseClusterRef(h.scope, ref); err != nil || got != want {
				t.Errorf("parseClusterRef(%q) = %q, %v; want %q", ref, got, err, want)
			}
		}
		for _, ref := range []string{
			"arn:aws:ecs:us-west-2:123456789012:cluster/x",       // other region
			"arn:aws:ecs:us-east-1:999999999999:cluster/x",       // other account
			"arn:aws:ecs:us-east-1:123456789012:service/x/y",     // not a cluster
			"arn:aws:ecs:us-east-1:123456789012:cluster/x/extra", // malformed
			"arn:aws:lambda:us-east-1:123456789012:cluster/x",    // other service
			"arn:aws-cn:ecs:us-east-1:123456789012:cluster/x",    // other partition
			"arn:aws:ecs:us-east-1",                              // truncated
			"bad name", "a/b", string(make([]byte, 256)),
		} {
			if _, err := parseClusterRef(h.scope, ref); clusterErrCode(err) != ecs.CodeInvalidParameter {
				t.Errorf("parseClusterRef(%q): want InvalidParameterException, got %v", ref, err)
			}
		}
	})

	t.Run("counts and statistics come from members", func(t *testing.T) {
		c := h.call()
		if _, err := h.srv.createCluster(c, &ecs.CreateClusterRequest{ClusterName: "counted"}); err != nil {
			t.Fatal(err)
		}
		h.putMember(t, resource.KindService, "counted", "s1", resource.CountActiveService, ecs.LaunchTypeFARGATE)
		h.putMember(t, resource.KindService, "counted", "s2", resource.CountDrainingService, ecs.LaunchTypeEC2)
		h.putMember(t, resource.KindService, "counted", "s3", resource.CountNone, ecs.LaunchTypeEC2)
		h.putMember(t, resource.KindTask, "counted", "t1", resource.CountRunningTask, ecs.LaunchTypeFARGATE)
		h.putMember(t, resource.KindTask, "counted", "t2", resource.CountRunningTask, "")
		h.putMember(t, resource.KindTask, "counted", "t3", resource.CountPendingTask, ecs.LaunchTypeEXTERNAL)
		h.putMember(t, resource.KindContainerInstance, "counted", "i1", resource.CountRegisteredInstance, "")
		h.putMember(t, resource.KindContainerInstance, "counted", "i2", resource.CountRegisteredInstance, "")
		// A member of another cluster whose name extends this one's is not counted.
		h.putMember(t, resource.KindTask, "counted-2", "t9", resource.CountRunningTask, ecs.LaunchTypeEC2)

		out, err := h.srv.describeClusters(h.call(), &ecs.DescribeClustersRequest{Clusters: []string{"counted"}, Include: []ecs.ClusterField{ecs.ClusterFieldSTATISTICS}})
		if err != nil {
			t.Fatal(err)
		}
		cl := out.Clusters[0]
		if cl.ActiveServicesCount != 1 || cl.RunningTasksCount != 2 || cl.PendingTasksCount != 1 || cl.RegisteredContainerInstancesCount != 2 {
			t.Fatalf("counts: active=%d running=%d pending=%d instances=%d", cl.ActiveServicesCount, cl.RunningTasksCount, cl.PendingTasksCount, cl.RegisteredContainerInstancesCount)
		}
		stats := map[string]string{}
		var names []string
		for _, kv := range cl.Statistics {
			stats[kv.Name] = kv.Value
			names = append(names, kv.Name)
		}
		if len(names) != 16 || names[0] != "runningEC2TasksCount" || names[15] != "drainingManagedInstancesServiceCount" {
			t.Fatalf("statistics names: %v", names)
		}
		want := map[string]string{"runningFargateTasksCount": "1", "runningEC2TasksCount": "1", "pendingExternalTasksCount": "1",
			"activeFargateServiceCount": "1", "drainingEC2ServiceCount": "1"}
		for name, v := range stats {
			if w, ok := want[name]; (ok && v != w) || (!ok && v != "0") {
				t.Errorf("statistic %s = %s, want %s", name, v, want[name])
			}
		}
	})

	t.Run("delete refuses while the cluster holds things", func(t *testing.T) {
		del := func() error {
			_, err := h.srv.deleteCluster(h.call(), &ecs.DeleteClusterRequest{Cluster: "counted"})
			return err
		}
		if err := del(); clusterErrCode(err) != ecs.CodeClusterContainsServices {
			t.Fatalf("with services: %v", err)
		}
		h.putMember(t, resource.KindService, "counted", "s1", resource.CountNone, "")
		if err := del(); clusterErrCode(err) != ecs.CodeClusterContainsServices {
			t.Fatalf("with a draining service: %v", err)
		}
		h.putMember(t, resource.KindService, "counted", "s2", resource.CountNone, "")
		if err := del(); clusterErrCode(err) != ecs.CodeClusterContainsContainerInstances {
			t.Fatalf("with instances: %v", err)
		}
		h.putMember(t, resource.KindContainerInstance, "counted", "i1", resource.CountNone, "")
		h.putMember(t, resource.KindContainerInstance, "counted", "i2", resource.CountNone, "")
		if err := del(); clusterErrCode(err) != ecs.CodeClusterContainsTasks {
			t.Fatalf("with tasks: %v", err)
		}
		h.putMember(t, resource.KindTask, "counted", "t1", resource.CountNone, "")
		h.putMember(t, resource.KindTask, "counted", "t2", resource.CountNone, "")
		if err := del(); clusterErrCode(err) != ecs.CodeClusterContainsTasks {
			t.Fatalf("with a pending task: %v", err)
		}
		if rec, err := h.srv.resolveCluster(h.call(), "counted", false); err != nil || rec.Status != "ACTIVE" {
			t.Fatalf("a refused delete changed the cluster: %+v %v", rec, err)
		}
		h.putMember(t, resource.KindTask, "counted", "t3", resource.CountNone, "")
		if err := del(); err != nil {
			t.Fatalf("empty cluster: %v", err)
		}
	})

	t.Run("an INACTIVE cluster counts nothing", func(t *testing.T) {
		// A stale member left behind must not show on the deleted cluster.
		h.putMember(t, resource.KindTask, "counted", "t4", resource.CountRunningTask, ecs.LaunchTypeEC2)
		out, err := h.srv.describeClusters(h.call(), &ecs.DescribeClustersRequest{Clusters: []string{"counted"}})
		if err != nil {
			t.Fatal(err)
		}
		if cl := out.Clusters[0]; cl.Status != "INACTIVE" || cl.RunningTasksCount != 0 {
			t.Fatalf("deleted cluster: status=%s running=%d", cl.Status, cl.RunningTasksCount)
		}
	})

	t.Run("the account's containerInsights default applies", func(t *testing.T) {
		c := h.call()
		put := func(principal, value string) {
			var err error
			if principal == "" {
				_, err = h.srv.putAccountSettingDefault(c, &ecs.PutAccountSettingDefaultRequest{Name: ecs.SettingNameContainerInsights, Value: value})
			} else {
				_, err = h.srv.putAccountSetting(c, &ecs.PutAccountSettingRequest{Name: ecs.SettingNameContainerInsights, Value: value, PrincipalArn: principal})
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		put("", "enabled")
		out, err := h.srv.createCluster(c, &ecs.CreateClusterRequest{ClusterName: "insights-account"})
		if err != nil || !slices.Equal(out.Cluster.Settings, []ecs.ClusterSetting{{Name: "containerInsights", Value: "enabled"}}) {
			t.Fatalf("account default: %+v %v", out, err)
		}
		put("arn:aws:iam::123456789012:root", "enhanced")
		out, err = h.srv.createCluster(c, &ecs.CreateClusterRequest{ClusterName: "insights-principal"})
		if err != nil || !slices.Equal(out.Cluster.Settings, []ecs.ClusterSetting{{Name: "containerInsights", Value: "enhanced"}}) {
			t.Fatalf("principal setting: %+v %v", out, err)
		}
		out, err = h.srv.createCluster(c, &ecs.CreateClusterRequest{ClusterName: "insights-explicit",
			Settings: []ecs.ClusterSetting{{Name: "containerInsights", Value: "disabled"}}})
		if err != nil || !slices.Equal(out.Cluster.Settings, []ecs.ClusterSetting{{Name: "containerInsights", Value: "disabled"}}) {
			t.Fatalf("explicit setting: %+v %v", out, err)
		}
	})
}
