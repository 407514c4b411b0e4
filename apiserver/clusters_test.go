package apiserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/ecsd/ecsd/internal/testenv"
)

const clusterARNPrefix = "arn:aws:ecs:us-east-1:123456789012:cluster/"

// clusterBodyRecorder keeps the last response body so tests can check which
// fields are on the wire (the SDK cannot tell an omitted list from nil).
type clusterBodyRecorder struct {
	mu   sync.Mutex
	last []byte
}

func (r *clusterBodyRecorder) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.last = b
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// cluster returns the cluster object of the last response (the "cluster" member,
// or the first of "clusters") as raw JSON members.
func (r *clusterBodyRecorder) cluster(t *testing.T) map[string]json.RawMessage {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var top struct {
		Cluster  map[string]json.RawMessage   `json:"cluster"`
		Clusters []map[string]json.RawMessage `json:"clusters"`
	}
	if err := json.Unmarshal(r.last, &top); err != nil {
		t.Fatalf("response body %s: %v", r.last, err)
	}
	if top.Cluster != nil {
		return top.Cluster
	}
	if len(top.Clusters) == 0 {
		t.Fatalf("no cluster in %s", r.last)
	}
	return top.Clusters[0]
}

func clusterRawClient(env *testenv.Env, rec *clusterBodyRecorder) *ecs.Client {
	return ecs.New(ecs.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(env.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		HTTPClient:       rec,
		RetryMaxAttempts: 1,
	})
}

func clusterAPIError(t *testing.T, err error, code string, mention string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want %s, got %v", code, err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("want %s, got %s: %s", code, ae.ErrorCode(), ae.ErrorMessage())
	}
	if mention != "" && !strings.Contains(ae.ErrorMessage(), mention) {
		t.Fatalf("%s message %q does not mention %q", code, ae.ErrorMessage(), mention)
	}
}

func clusterHasKeys(t *testing.T, obj map[string]json.RawMessage, present, absent []string) {
	t.Helper()
	for _, k := range present {
		if _, ok := obj[k]; !ok {
			t.Errorf("field %q missing from %v", k, clusterKeys(obj))
		}
	}
	for _, k := range absent {
		if _, ok := obj[k]; ok {
			t.Errorf("field %q present (%s), want it omitted", k, obj[k])
		}
	}
}

func clusterKeys(obj map[string]json.RawMessage) []string {
	var ks []string
	for k := range obj {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func clusterListAll(t *testing.T, cl *ecs.Client) []string {
	t.Helper()
	var all []string
	p := ecs.NewListClustersPaginator(cl, &ecs.ListClustersInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.ClusterArns...)
	}
	return all
}

func clusterDescribe(t *testing.T, cl *ecs.Client, include []types.ClusterField, refs ...string) *ecs.DescribeClustersOutput {
	t.Helper()
	out, err := cl.DescribeClusters(context.Background(), &ecs.DescribeClustersInput{Clusters: refs, Include: include})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var clusterAllFields = []types.ClusterField{types.ClusterFieldAttachments, types.ClusterFieldConfigurations,
	types.ClusterFieldSettings, types.ClusterFieldStatistics, types.ClusterFieldTags}

func TestClusterOperations(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	rec := &clusterBodyRecorder{}
	raw := clusterRawClient(env, rec)
	cl := env.ECS

	t.Run("create without a name makes the default cluster", func(t *testing.T) {
		out, err := raw.CreateCluster(ctx, &ecs.CreateClusterInput{})
		if err != nil {
			t.Fatal(err)
		}
		c := out.Cluster
		if aws.ToString(c.ClusterName) != "default" || aws.ToString(c.ClusterArn) != clusterARNPrefix+"default" || aws.ToString(c.Status) != "ACTIVE" {
			t.Fatalf("cluster: %+v", c)
		}
		if len(c.Settings) != 1 || c.Settings[0].Name != types.ClusterSettingNameContainerInsights || aws.ToString(c.Settings[0].Value) != "disabled" {
			t.Fatalf("settings: %+v", c.Settings)
		}
		obj := rec.cluster(t)
		clusterHasKeys(t, obj,
			[]string{"clusterArn", "clusterName", "status", "activeServicesCount", "runningTasksCount", "pendingTasksCount",
				"registeredContainerInstancesCount", "statistics", "tags", "settings", "capacityProviders", "defaultCapacityProviderStrategy"},
			[]string{"configuration", "attachments", "attachmentsStatus", "serviceConnectDefaults"})
		for _, k := range []string{"statistics", "tags", "capacityProviders", "defaultCapacityProviderStrategy"} {
			if string(obj[k]) != "[]" {
				t.Errorf("%s = %s, want []", k, obj[k])
			}
		}
	})

	full := &ecs.CreateClusterInput{
		ClusterName: aws.String("full"),
		Settings:    []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("enhanced")}},
		Configuration: &types.ClusterConfiguration{
			ExecuteCommandConfiguration: &types.ExecuteCommandConfiguration{
				Logging:          types.ExecuteCommandLoggingOverride,
				KmsKeyId:         aws.String("key-1"),
				LogConfiguration: &types.ExecuteCommandLogConfiguration{CloudWatchLogGroupName: aws.String("/exec"), CloudWatchEncryptionEnabled: true},
			},
			ManagedStorageConfiguration: &types.ManagedStorageConfiguration{KmsKeyId: aws.String("key-2")},
		},
		Tags:                            []types.Tag{{Key: aws.String("env"), Value: aws.String("test")}, {Key: aws.String("empty"), Value: aws.String("")}},
		ServiceConnectDefaults:          &types.ClusterServiceConnectDefaultsRequest{Namespace: aws.String("arn:aws:servicediscovery:us-east-1:123456789012:namespace/ns-1")},
		CapacityProviders:               []string{"FARGATE", "FARGATE_SPOT"},
		DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE"), Base: 1, Weight: 1}, {CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 4}},
	}

	t.Run("create with every parameter", func(t *testing.T) {
		out, err := cl.CreateCluster(ctx, full)
		if err != nil {
			t.Fatal(err)
		}
		c := out.Cluster
		if aws.ToString(c.ClusterArn) != clusterARNPrefix+"full" || aws.ToString(c.Settings[0].Value) != "enhanced" || len(c.Settings) != 1 {
			t.Fatalf("cluster: %+v", c)
		}
		if len(c.Tags) != 2 || aws.ToString(c.Tags[0].Key) != "env" || aws.ToString(c.Tags[0].Value) != "test" {
			t.Fatalf("tags: %+v", c.Tags)
		}
		if ecc := c.Configuration.ExecuteCommandConfiguration; ecc.Logging != types.ExecuteCommandLoggingOverride ||
			aws.ToString(ecc.LogConfiguration.CloudWatchLogGroupName) != "/exec" || !ecc.LogConfiguration.CloudWatchEncryptionEnabled ||
			aws.ToString(c.Configuration.ManagedStorageConfiguration.KmsKeyId) != "key-2" {
			t.Fatalf("configuration: %+v", c.Configuration)
		}
		if aws.ToString(c.ServiceConnectDefaults.Namespace) != aws.ToString(full.ServiceConnectDefaults.Namespace) {
			t.Fatalf("serviceConnectDefaults: %+v", c.ServiceConnectDefaults)
		}
		if !slices.Equal(c.CapacityProviders, []string{"FARGATE", "FARGATE_SPOT"}) || len(c.DefaultCapacityProviderStrategy) != 2 ||
			c.DefaultCapacityProviderStrategy[0].Base != 1 || c.DefaultCapacityProviderStrategy[1].Weight != 4 {
			t.Fatalf("capacity providers: %v %+v", c.CapacityProviders, c.DefaultCapacityProviderStrategy)
		}
	})

	t.Run("create of an existing cluster returns it unchanged", func(t *testing.T) {
		out, err := cl.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("full"),
			Tags:     []types.Tag{{Key: aws.String("other"), Value: aws.String("x")}},
			Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("disabled")}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Cluster.Tags) != 2 || aws.ToString(out.Cluster.Settings[0].Value) != "enhanced" {
			t.Fatalf("second create changed the cluster: %+v", out.Cluster)
		}
		d := clusterDescribe(t, cl, clusterAllFields, "full").Clusters[0]
		if len(d.Tags) != 2 || aws.ToString(d.Settings[0].Value) != "enhanced" {
			t.Fatalf("stored cluster changed: %+v", d)
		}
	})

	t.Run("describe includes only what is asked for", func(t *testing.T) {
		d := clusterDescribe(t, raw, nil, "full").Clusters[0]
		obj := rec.cluster(t)
		clusterHasKeys(t, obj, []string{"settings", "tags", "statistics", "capacityProviders", "defaultCapacityProviderStrategy", "serviceConnectDefaults"},
			[]string{"configuration", "attachments", "attachmentsStatus"})
		for _, k := range []string{"settings", "tags", "statistics"} {
			if string(obj[k]) != "[]" {
				t.Errorf("without include, %s = %s, want []", k, obj[k])
			}
		}
		if len(d.CapacityProviders) != 2 {
			t.Errorf("capacityProviders are always described: %v", d.CapacityProviders)
		}

		d = clusterDescribe(t, raw, clusterAllFields, "full").Clusters[0]
		obj = rec.cluster(t)
		clusterHasKeys(t, obj, []string{"configuration", "attachments"}, []string{"attachmentsStatus"})
		if len(d.Settings) != 1 || len(d.Tags) != 2 || d.Configuration == nil || d.Configuration.ManagedStorageConfiguration == nil {
			t.Fatalf("with include: %+v", d)
		}
		if len(d.Statistics) != 16 || aws.ToString(d.Statistics[0].Name) != "runningEC2TasksCount" {
			t.Fatalf("statistics: %+v", d.Statistics)
		}
		for _, kv := range d.Statistics {
			if aws.ToString(kv.Value) != "0" {
				t.Errorf("statistic %s = %s in an empty cluster", aws.ToString(kv.Name), aws.ToString(kv.Value))
			}
		}

		for _, f := range clusterAllFields {
			d := clusterDescribe(t, cl, []types.ClusterField{f}, "full").Clusters[0]
			if got := len(d.Settings) > 0; got != (f == types.ClusterFieldSettings) {
				t.Errorf("include %s: settings %v", f, d.Settings)
			}
			if got := len(d.Tags) > 0; got != (f == types.ClusterFieldTags) {
				t.Errorf("include %s: tags %v", f, d.Tags)
			}
			if got := d.Configuration != nil; got != (f == types.ClusterFieldConfigurations) {
				t.Errorf("include %s: configuration %v", f, d.Configuration)
			}
			if got := len(d.Statistics) > 0; got != (f == types.ClusterFieldStatistics) {
				t.Errorf("include %s: statistics %v", f, d.Statistics)
			}
		}
	})

	t.Run("describe by ARN, by default and of missing clusters", func(t *testing.T) {
		out := clusterDescribe(t, cl, nil, clusterARNPrefix+"full")
		if len(out.Clusters) != 1 || aws.ToString(out.Clusters[0].ClusterName) != "full" {
			t.Fatalf("by ARN: %+v", out)
		}
		out = clusterDescribe(t, cl, nil)
		if len(out.Clusters) != 1 || aws.ToString(out.Clusters[0].ClusterName) != "default" {
			t.Fatalf("no cluster given: %+v", out)
		}
		otherRegion := "arn:aws:ecs:us-west-2:123456789012:cluster/full"
		out = clusterDescribe(t, raw, nil, "nope", clusterARNPrefix+"nope2", otherRegion, "full")
		if len(out.Clusters) != 1 || aws.ToString(out.Clusters[0].ClusterName) != "full" {
			t.Fatalf("clusters: %+v", out.Clusters)
		}
		want := []string{clusterARNPrefix + "nope", clusterARNPrefix + "nope2", otherRegion}
		if len(out.Failures) != len(want) {
			t.Fatalf("failures: %+v", out.Failures)
		}
		for i, f := range out.Failures {
			if aws.ToString(f.Arn) != want[i] || aws.ToString(f.Reason) != "MISSING" {
				t.Errorf("failure %d: %s %s, want %s MISSING", i, aws.ToString(f.Arn), aws.ToString(f.Reason), want[i])
			}
		}
		out = clusterDescribe(t, raw, nil, "nope")
		if out.Clusters == nil || len(out.Clusters) != 0 {
			t.Fatalf("clusters should be [] when all are missing: %+v", out.Clusters)
		}
		_, err := cl.DescribeClusters(ctx, &ecs.DescribeClustersInput{Include: []types.ClusterField{"BOGUS"}})
		clusterAPIError(t, err, "InvalidParameterException", "include[0]")
	})

	t.Run("update merges settings, configuration and service connect defaults", func(t *testing.T) {
		out, err := cl.UpdateCluster(ctx, &ecs.UpdateClusterInput{Cluster: aws.String(clusterARNPrefix + "full"),
			Settings:      []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("enabled")}},
			Configuration: &types.ClusterConfiguration{ManagedStorageConfiguration: &types.ManagedStorageConfiguration{KmsKeyId: aws.String("key-3")}},
			ServiceConnectDefaults: &types.ClusterServiceConnectDefaultsRequest{
				Namespace: aws.String("arn:aws:servicediscovery:us-east-1:123456789012:namespace/ns-2")},
		})
		if err != nil {
			t.Fatal(err)
		}
		c := out.Cluster
		if len(c.Settings) != 1 || aws.ToString(c.Settings[0].Value) != "enabled" {
			t.Fatalf("settings: %+v", c.Settings)
		}
		if aws.ToString(c.Configuration.ManagedStorageConfiguration.KmsKeyId) != "key-3" || c.Configuration.ExecuteCommandConfiguration == nil {
			t.Fatalf("configuration: %+v", c.Configuration)
		}
		if !strings.HasSuffix(aws.ToString(c.ServiceConnectDefaults.Namespace), "ns-2") || len(c.Tags) != 2 {
			t.Fatalf("cluster: %+v", c)
		}
		// An empty namespace removes the default namespace.
		out, err = raw.UpdateCluster(ctx, &ecs.UpdateClusterInput{Cluster: aws.String("full"),
			ServiceConnectDefaults: &types.ClusterServiceConnectDefaultsRequest{Namespace: aws.String("")}})
		if err != nil {
			t.Fatal(err)
		}
		if out.Cluster.ServiceConnectDefaults != nil {
			t.Fatalf("namespace not removed: %+v", out.Cluster.ServiceConnectDefaults)
		}
		clusterHasKeys(t, rec.cluster(t), []string{"settings", "tags", "configuration"}, []string{"serviceConnectDefaults"})
		d := clusterDescribe(t, cl, clusterAllFields, "full").Clusters[0]
		if d.ServiceConnectDefaults != nil || aws.ToString(d.Settings[0].Value) != "enabled" {
			t.Fatalf("stored: %+v", d)
		}

		_, err = cl.UpdateCluster(ctx, &ecs.UpdateClusterInput{Cluster: aws.String("nope")})
		clusterAPIError(t, err, "ClusterNotFoundException", "")
		_, err = cl.UpdateCluster(ctx, &ecs.UpdateClusterInput{Cluster: aws.String("arn:aws:ecs:eu-west-1:123456789012:cluster/full")})
		clusterAPIError(t, err, "InvalidParameterException", "region")
		_, err = cl.UpdateCluster(ctx, &ecs.UpdateClusterInput{Cluster: aws.String("arn:aws:ecs:us-east-1:123456789012:task/full/abc")})
		clusterAPIError(t, err, "InvalidParameterException", "cluster")
		_, err = cl.UpdateCluster(ctx, &ecs.UpdateClusterInput{Cluster: aws.String("full"),
			Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("on")}}})
		clusterAPIError(t, err, "InvalidParameterException", "settings[0].value")
	})

	t.Run("update cluster settings", func(t *testing.T) {
		out, err := cl.UpdateClusterSettings(ctx, &ecs.UpdateClusterSettingsInput{Cluster: aws.String("default"),
			Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("enhanced")}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Cluster.Settings) != 1 || aws.ToString(out.Cluster.Settings[0].Value) != "enhanced" {
			t.Fatalf("settings: %+v", out.Cluster.Settings)
		}
		_, err = cl.UpdateClusterSettings(ctx, &ecs.UpdateClusterSettingsInput{Cluster: aws.String("nope"),
			Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("enabled")}}})
		clusterAPIError(t, err, "ClusterNotFoundException", "")
	})

	t.Run("delete leaves the cluster INACTIVE", func(t *testing.T) {
		if _, err := cl.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("doomed")}); err != nil {
			t.Fatal(err)
		}
		out, err := cl.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String(clusterARNPrefix + "doomed")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.Cluster.Status) != "INACTIVE" || aws.ToString(out.Cluster.ClusterName) != "doomed" || out.Cluster.RunningTasksCount != 0 {
			t.Fatalf("delete response: %+v", out.Cluster)
		}
		d := clusterDescribe(t, cl, nil, "doomed")
		if len(d.Clusters) != 1 || aws.ToString(d.Clusters[0].Status) != "INACTIVE" || len(d.Failures) != 0 {
			t.Fatalf("describe after delete: %+v", d)
		}
		if slices.Contains(clusterListAll(t, cl), clusterARNPrefix+"doomed") {
			t.Fatal("ListClusters shows an INACTIVE cluster")
		}
		_, err = cl.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("doomed")})
		clusterAPIError(t, err, "ClusterNotFoundException", "")
		_, err = cl.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("never")})
		clusterAPIError(t, err, "ClusterNotFoundException", "")
		_, err = cl.UpdateClusterSettings(ctx, &ecs.UpdateClusterSettingsInput{Cluster: aws.String("doomed"),
			Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("enabled")}}})
		clusterAPIError(t, err, "ClusterNotFoundException", "")

		// Creating the name again makes a new cluster from the new request.
		c, err := cl.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("doomed"),
			Tags: []types.Tag{{Key: aws.String("again"), Value: aws.String("yes")}}})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(c.Cluster.Status) != "ACTIVE" || len(c.Cluster.Tags) != 1 {
			t.Fatalf("recreated: %+v", c.Cluster)
		}
		if !slices.Contains(clusterListAll(t, cl), clusterARNPrefix+"doomed") {
			t.Fatal("recreated cluster not listed")
		}
	})

	t.Run("invalid requests are rejected and store nothing", func(t *testing.T) {
		before := clusterListAll(t, cl)
		tags51 := make([]types.Tag, 51)
		for i := range tags51 {
			tags51[i] = types.Tag{Key: aws.String(fmt.Sprint("k", i)), Value: aws.String("v")}
		}
		tag := func(k, v string) []types.Tag { return []types.Tag{{Key: aws.String(k), Value: aws.String(v)}} }
		cases := []struct {
			name    string
			in      ecs.CreateClusterInput
			mention string
		}{
			{"bad name", ecs.CreateClusterInput{ClusterName: aws.String("bad name")}, "clusterName"},
			{"long name", ecs.CreateClusterInput{ClusterName: aws.String(strings.Repeat("a", 256))}, "clusterName"},
			{"slash", ecs.CreateClusterInput{ClusterName: aws.String("a/b")}, "clusterName"},
			{"aws prefix", ecs.CreateClusterInput{Tags: tag("aws:owner", "x")}, "tags[0].key"},
			{"AWS prefix", ecs.CreateClusterInput{Tags: tag("AWS:owner", "x")}, "tags[0].key"},
			{"long key", ecs.CreateClusterInput{Tags: tag(strings.Repeat("k", 129), "x")}, "tags[0].key"},
			{"long value", ecs.CreateClusterInput{Tags: tag("k", strings.Repeat("v", 257))}, "tags[0].value"},
			{"no key", ecs.CreateClusterInput{Tags: []types.Tag{{Value: aws.String("x")}}}, "tags[0].key"},
			{"duplicate key", ecs.CreateClusterInput{Tags: append(tag("k", "1"), tag("k", "2")...)}, "tags[1].key"},
			{"51 tags", ecs.CreateClusterInput{Tags: tags51}, "tags"},
			{"setting value", ecs.CreateClusterInput{Settings: []types.ClusterSetting{{Name: "containerInsights", Value: aws.String("on")}}}, "settings[0].value"},
			{"setting name", ecs.CreateClusterInput{Settings: []types.ClusterSetting{{Name: "bogus", Value: aws.String("enabled")}}}, "settings[0].name"},
			{"setting without value", ecs.CreateClusterInput{Settings: []types.ClusterSetting{{Name: "containerInsights"}}}, "settings[0].value"},
			{"strategy outside providers", ecs.CreateClusterInput{CapacityProviders: []string{"FARGATE"},
				DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 1}}},
				"defaultCapacityProviderStrategy[0].capacityProvider"},
			{"two bases", ecs.CreateClusterInput{CapacityProviders: []string{"FARGATE", "FARGATE_SPOT"},
				DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE"), Base: 1}, {CapacityProvider: aws.String("FARGATE_SPOT"), Base: 1}}},
				"defaultCapacityProviderStrategy"},
			{"weight too large", ecs.CreateClusterInput{CapacityProviders: []string{"FARGATE"},
				DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE"), Weight: 1001}}},
				"defaultCapacityProviderStrategy[0].weight"},
			{"duplicate provider", ecs.CreateClusterInput{CapacityProviders: []string{"FARGATE", "FARGATE"}}, "capacityProviders[1]"},
			{"override without log configuration", ecs.CreateClusterInput{Configuration: &types.ClusterConfiguration{
				ExecuteCommandConfiguration: &types.ExecuteCommandConfiguration{Logging: types.ExecuteCommandLoggingOverride}}},
				"configuration.executeCommandConfiguration.logConfiguration"},
			{"namespace missing", ecs.CreateClusterInput{ServiceConnectDefaults: &types.ClusterServiceConnectDefaultsRequest{Namespace: aws.String("")}}, "serviceConnectDefaults.namespace"},
		}
		for i, tc := range cases {
			in := tc.in
			name := fmt.Sprintf("rejected-%d", i)
			if in.ClusterName == nil {
				in.ClusterName = aws.String(name)
			}
			_, err := cl.CreateCluster(ctx, &in)
			clusterAPIError(t, err, "InvalidParameterException", tc.mention)
			if d := clusterDescribe(t, cl, nil, name); len(d.Clusters) != 0 {
				t.Errorf("%s: a rejected create stored %+v", tc.name, d.Clusters)
			}
		}
		if after := clusterListAll(t, cl); !slices.Equal(before, after) {
			t.Fatalf("rejected creates changed the cluster list:\nbefore %v\nafter  %v", before, after)
		}
	})

	t.Run("list parameters are checked", func(t *testing.T) {
		for _, n := range []int32{0, 101, -1} {
			_, err := cl.ListClusters(ctx, &ecs.ListClustersInput{MaxResults: aws.Int32(n)})
			clusterAPIError(t, err, "InvalidParameterException", "maxResults")
		}
		for _, tok := range []string{"garbage", "ZWNzZC5jbHVzdGVycy52MTpiYWQgbmFtZQ"} {
			_, err := cl.ListClusters(ctx, &ecs.ListClustersInput{NextToken: aws.String(tok)})
			clusterAPIError(t, err, "InvalidParameterException", "nextToken")
		}
	})
}

func TestClusterPagination(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	cl := env.ECS
	const n = 250
	want := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range n {
		name := fmt.Sprintf("c-%03d", i)
		want[i] = clusterARNPrefix + name
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := cl.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(name)}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	t.Run("pages of 100 cover every cluster once, in a stable order", func(t *testing.T) {
		var got []string
		var sizes []int
		token := ""
		for {
			in := &ecs.ListClustersInput{MaxResults: aws.Int32(100)}
			if token != "" {
				in.NextToken = aws.String(token)
			}
			out, err := cl.ListClusters(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, out.ClusterArns...)
			sizes = append(sizes, len(out.ClusterArns))
			token = aws.ToString(out.NextToken)
			if token == "" {
				break
			}
		}
		if !slices.Equal(sizes, []int{100, 100, 50}) {
			t.Fatalf("page sizes %v", sizes)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("listed %d clusters, not the %d created, in order", len(got), len(want))
		}
		if again := clusterListAll(t, cl); !slices.Equal(again, got) {
			t.Fatal("a second listing differs")
		}
	})

	t.Run("default page size is 100", func(t *testing.T) {
		out, err := cl.ListClusters(ctx, &ecs.ListClustersInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ClusterArns) != 100 || out.NextToken == nil {
			t.Fatalf("got %d, token %v", len(out.ClusterArns), out.NextToken)
		}
	})

	t.Run("an exact last page has no token", func(t *testing.T) {
		out, err := cl.ListClusters(ctx, &ecs.ListClustersInput{MaxResults: aws.Int32(50)})
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			out, err = cl.ListClusters(ctx, &ecs.ListClustersInput{MaxResults: aws.Int32(50), NextToken: out.NextToken})
			if err != nil {
				t.Fatal(err)
			}
		}
		if len(out.ClusterArns) != 50 || out.NextToken != nil {
			t.Fatalf("last page: %d clusters, token %v", len(out.ClusterArns), aws.ToString(out.NextToken))
		}
	})

	t.Run("deleting during pagination neither repeats nor skips the rest", func(t *testing.T) {
		out, err := cl.ListClusters(ctx, &ecs.ListClustersInput{MaxResults: aws.Int32(100)})
		if err != nil {
			t.Fatal(err)
		}
		// Delete the last cluster of page one and the first of page two.
		for _, name := range []string{"c-099", "c-100"} {
			if _, err := cl.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String(name)}); err != nil {
				t.Fatal(err)
			}
		}
		rest, err := cl.ListClusters(ctx, &ecs.ListClustersInput{MaxResults: aws.Int32(100), NextToken: out.NextToken})
		if err != nil {
			t.Fatal(err)
		}
		if len(rest.ClusterArns) != 100 || rest.ClusterArns[0] != clusterARNPrefix+"c-101" {
			t.Fatalf("page two after deletes starts at %s with %d clusters", rest.ClusterArns[0], len(rest.ClusterArns))
		}
		if all := clusterListAll(t, cl); len(all) != n-2 || slices.Contains(all, clusterARNPrefix+"c-099") {
			t.Fatalf("after deleting two: %d listed", len(all))
		}
	})
}
