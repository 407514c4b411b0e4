package apiserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

var tagScope = resource.Scope{Account: "123456789012", Region: "us-east-1"}

// tagsWant fails unless err is an API error with code whose message contains
// every one of parts.
func tagsWant(t *testing.T, err error, code string, parts ...string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want %s, got %v", code, err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("want %s, got %s: %s", code, ae.ErrorCode(), ae.ErrorMessage())
	}
	for _, p := range parts {
		if !strings.Contains(ae.ErrorMessage(), p) {
			t.Fatalf("%s message %q does not mention %q", code, ae.ErrorMessage(), p)
		}
	}
}

func tagsList(t *testing.T, env *testenv.Env, arn string) []types.Tag {
	t.Helper()
	out, err := env.ECS.ListTagsForResource(context.Background(), &awsecs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil {
		t.Fatalf("ListTagsForResource %s: %v", arn, err)
	}
	return out.Tags
}

func tagsOf(kv ...string) []types.Tag {
	var out []types.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

func tagsFlat(tags []types.Tag) string {
	var b []string
	for _, t := range tags {
		b = append(b, aws.ToString(t.Key)+"="+aws.ToString(t.Value))
	}
	return strings.Join(b, ",")
}

func tagsCreateCluster(t *testing.T, env *testenv.Env, name string, tags ...types.Tag) string {
	t.Helper()
	out, err := env.ECS.CreateCluster(context.Background(), &awsecs.CreateClusterInput{ClusterName: aws.String(name), Tags: tags})
	if err != nil {
		t.Fatalf("CreateCluster %s: %v", name, err)
	}
	return aws.ToString(out.Cluster.ClusterArn)
}

// tagsRewrite edits a stored record directly (for states the API cannot
// produce, such as AWS-owned aws: tags) and waits until the cache shows it.
func tagsRewrite[T any](t *testing.T, env *testenv.Env, key string, fn func(*T)) {
	t.Helper()
	ctx := context.Background()
	kv, err := env.CP.Store.Get(ctx, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	v := new(T)
	if err := json.Unmarshal(kv.Value, v); err != nil {
		t.Fatal(err)
	}
	fn(v)
	rev, err := env.CP.Store.Txn(ctx, store.Update(key, resource.Encode(v), kv.Revision))
	if err != nil {
		t.Fatalf("update %s: %v", key, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := env.CP.Cache.WaitFor(wctx, rev); err != nil {
		t.Fatal(err)
	}
}

func tagsTaskDefinition(t *testing.T, env *testenv.Env, family string, tags ...types.Tag) string {
	t.Helper()
	out, err := env.ECS.RegisterTaskDefinition(context.Background(), &awsecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("busybox"), Memory: aws.Int32(64),
		}},
		Tags: tags,
	})
	if err != nil {
		t.Fatalf("RegisterTaskDefinition %s: %v", family, err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

func TestTagResourceLifecycle(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()

	t.Run("cluster", func(t *testing.T) {
		arn := tagsCreateCluster(t, env, "tagged", tagsOf("team", "core", "env", "dev")...)
		if got := tagsFlat(tagsList(t, env, arn)); got != "team=core,env=dev" {
			t.Fatalf("tags after create: %s", got)
		}
		// New keys append; existing keys are overwritten in place; an empty value is a value.
		_, err := env.ECS.TagResource(ctx, &awsecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: tagsOf("env", "prod", "owner", "", "cost", "42")})
		if err != nil {
			t.Fatal(err)
		}
		if got := tagsFlat(tagsList(t, env, arn)); got != "team=core,env=prod,owner=,cost=42" {
			t.Fatalf("tags after TagResource: %s", got)
		}
		// An empty tag list is accepted and changes nothing.
		if _, err := env.ECS.TagResource(ctx, &awsecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{}}); err != nil {
			t.Fatal(err)
		}
		// Removing absent keys is fine.
		_, err = env.ECS.UntagResource(ctx, &awsecs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"team", "nope"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := tagsFlat(tagsList(t, env, arn)); got != "env=prod,owner=,cost=42" {
			t.Fatalf("tags after UntagResource: %s", got)
		}
		// DescribeClusters shows the same tags.
		d, err := env.ECS.DescribeClusters(ctx, &awsecs.DescribeClustersInput{Clusters: []string{arn}, Include: []types.ClusterField{types.ClusterFieldTags}})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Clusters) != 1 || tagsFlat(d.Clusters[0].Tags) != "env=prod,owner=,cost=42" {
			t.Fatalf("DescribeClusters tags: %+v", d.Clusters)
		}
		_, err = env.ECS.UntagResource(ctx, &awsecs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"env", "owner", "cost"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := tagsList(t, env, arn); got == nil || len(got) != 0 {
			t.Fatalf("tags after removing all: %#v (want an empty, present list)", got)
		}
	})

	t.Run("task definition", func(t *testing.T) {
		arn := tagsTaskDefinition(t, env, "web", tagsOf("app", "web")...)
		if got := tagsFlat(tagsList(t, env, arn)); got != "app=web" {
			t.Fatalf("tags: %s", got)
		}
		if _, err := env.ECS.TagResource(ctx, &awsecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: tagsOf("tier", "1")}); err != nil {
			t.Fatal(err)
		}
		if _, err := env.ECS.UntagResource(ctx, &awsecs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"app"}}); err != nil {
			t.Fatal(err)
		}
		if got := tagsFlat(tagsList(t, env, arn)); got != "tier=1" {
			t.Fatalf("tags: %s", got)
		}
		d, err := env.ECS.DescribeTaskDefinition(ctx, &awsecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
		if err != nil {
			t.Fatal(err)
		}
		if got := tagsFlat(d.Tags); got != "tier=1" {
			t.Fatalf("DescribeTaskDefinition tags: %s", got)
		}
		// A revision that does not exist.
		_, err = env.ECS.ListTagsForResource(ctx, &awsecs.ListTagsForResourceInput{ResourceArn: aws.String(tagScope.TaskDefinitionARN("web", 9))})
		tagsWant(t, err, ecs.CodeResourceNotFound, "task-definition/web:9")
		_, err = env.ECS.TagResource(ctx, &awsecs.TagResourceInput{ResourceArn: aws.String(tagScope.TaskDefinitionARN("nope", 1)), Tags: tagsOf("a", "b")})
		tagsWant(t, err, ecs.CodeResourceNotFound)
		// A task definition ARN needs its revision.
		_, err = env.ECS.ListTagsForResource(ctx, &awsecs.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecs:us-east-1:123456789012:task-definition/web")})
		tagsWant(t, err, ecs.CodeInvalidParameter, "resourceArn")
	})
}

func TestTagResourceErrors(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	arn := tagsCreateCluster(t, env, "errs")
	tag := func(tags ...types.Tag) error {
		_, err := env.ECS.TagResource(ctx, &awsecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: tags})
		return err
	}

	// Missing required members never leave the SDK (it validates them itself);
	// TestProtocolMissingRequiredMember sends them raw.
	cases := []struct {
		name  string
		err   error
		code  string
		parts []string
	}{
		{"aws: key", tag(tagsOf("aws:owner", "x")...), ecs.CodeInvalidParameter, []string{"tags[0].key", "aws:"}},
		{"AWS: key any case", tag(tagsOf("ok", "1", "AwS:Owner", "x")...), ecs.CodeInvalidParameter, []string{"tags[1].key"}},
		{"empty key", tag(types.Tag{Value: aws.String("v")}), ecs.CodeInvalidParameter, []string{"tags[0].key"}},
		{"duplicate key", tag(tagsOf("k", "1", "k", "2")...), ecs.CodeInvalidParameter, []string{"tags[1].key", "duplicate"}},
		{"key too long", tag(tagsOf(strings.Repeat("k", 129), "v")...), ecs.CodeInvalidParameter, []string{"tags[0].key"}},
		{"value too long", tag(tagsOf("k", strings.Repeat("v", 257))...), ecs.CodeInvalidParameter, []string{"tags[0].value"}},
		{"key pattern", tag(tagsOf("bad*key", "v")...), ecs.CodeInvalidParameter, []string{"tags[0].key"}},
		{"value pattern", tag(tagsOf("k", "bad#value")...), ecs.CodeInvalidParameter, []string{"tags[0].value"}},
		{"untag aws: key", func() error {
			_, err := env.ECS.UntagResource(ctx, &awsecs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"x", "aws:cloudformation:stack-name"}})
			return err
		}(), ecs.CodeInvalidParameter, []string{"tagKeys[1]", "aws:"}},
		{"untag empty key", func() error {
			_, err := env.ECS.UntagResource(ctx, &awsecs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{""}})
			return err
		}(), ecs.CodeInvalidParameter, []string{"tagKeys[0]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tagsWant(t, tc.err, tc.code, tc.parts...) })
	}
	if got := tagsList(t, env, arn); len(got) != 0 {
		t.Fatalf("a refused request changed tags: %s", tagsFlat(got))
	}

	arns := []struct {
		name, arn, code string
	}{
		{"not an ARN", "errs", ecs.CodeInvalidParameter},
		{"not ECS", "arn:aws:s3:us-east-1:123456789012:bucket/errs", ecs.CodeInvalidParameter},
		{"no resource id", "arn:aws:ecs:us-east-1:123456789012:cluster", ecs.CodeInvalidParameter},
		{"untaggable type", "arn:aws:ecs:us-east-1:123456789012:widget/errs", ecs.CodeInvalidParameter},
		{"cluster with a path", "arn:aws:ecs:us-east-1:123456789012:cluster/errs/extra", ecs.CodeInvalidParameter},
		{"other account", "arn:aws:ecs:us-east-1:210987654321:cluster/errs", ecs.CodeInvalidParameter},
		{"other region", "arn:aws:ecs:eu-west-1:123456789012:cluster/errs", ecs.CodeInvalidParameter},
		{"missing cluster", "arn:aws:ecs:us-east-1:123456789012:cluster/nope", ecs.CodeClusterNotFound},
		{"service in missing cluster", "arn:aws:ecs:us-east-1:123456789012:service/nope/web", ecs.CodeClusterNotFound},
		{"missing service", "arn:aws:ecs:us-east-1:123456789012:service/errs/web", ecs.CodeResourceNotFound},
		{"missing capacity provider", "arn:aws:ecs:us-east-1:123456789012:capacity-provider/cp", ecs.CodeResourceNotFound},
	}
	for _, tc := range arns {
		t.Run(tc.name, func(t *testing.T) {
			_, err := env.ECS.ListTagsForResource(ctx, &awsecs.ListTagsForResourceInput{ResourceArn: aws.String(tc.arn)})
			tagsWant(t, err, tc.code)
			_, err = env.ECS.TagResource(ctx, &awsecs.TagResourceInput{ResourceArn: aws.String(tc.arn), Tags: tagsOf("a", "b")})
			tagsWant(t, err, tc.code)
			_, err = env.ECS.UntagResource(ctx, &awsecs.UntagResourceInput{ResourceArn: aws.String(tc.arn), TagKeys: []string{"a"}})
			tagsWant(t, err, tc.code)
		})
	}
}

func TestTagResourceLimitAndReservedTags(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	arn := tagsCreateCluster(t, env, "limits")
	// AWS's own tags (the API cannot add them) do not count and cannot be removed.
	tagsRewrite(t, env, tagScope.ClusterKey("limits"), func(c *resource.Cluster) {
		c.Tags = append(c.Tags, ecs.Tag{Key: "aws:cloudformation:stack-name", Value: "s"})
	})
	many := func(prefix string, n int) []types.Tag {
		var out []types.Tag
		for i := range n {
			out = append(out, types.Tag{Key: aws.String(fmt.Sprintf("%s%02d", prefix, i)), Value: aws.String("v")})
		}
		return out
	}
	if _, err := env.ECS.TagResource(ctx, &awsecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: many("a", 30)}); err != nil {
		t.Fatal(err)
	}
	_, err := env.ECS.TagResource(ctx, &awsecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: many("b", 21)})
	tagsWant(t, err, ecs.CodeInvalidParameter, "50", "51")
	// Overwriting existing keys does not grow the count: 30 + 20 = 50 exactly.
	if _, err := env.ECS.TagResource(ctx, &awsecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: append(many("a", 30)[:5], many("b", 20)...)}); err != nil {
		t.Fatal(err)
	}
	got := tagsList(t, env, arn)
	if len(got) != 51 || !slices.ContainsFunc(got, func(tg types.Tag) bool { return aws.ToString(tg.Key) == "aws:cloudformation:stack-name" }) {
		t.Fatalf("want 50 user tags and the aws: tag, got %d: %s", len(got), tagsFlat(got))
	}
	// More than 50 in one request is the model's limit.
	_, err = env.ECS.TagResource(ctx, &awsecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: many("c", 51)})
	tagsWant(t, err, ecs.CodeInvalidParameter, "tags")
	_, err = env.ECS.UntagResource(ctx, &awsecs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"aws:cloudformation:stack-name"}})
	tagsWant(t, err, ecs.CodeInvalidParameter)
}

func TestTagResourceInactiveCluster(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	arn := tagsCreateCluster(t, env, "gone", tagsOf("k", "v")...)
	if _, err := env.ECS.DeleteCluster(ctx, &awsecs.DeleteClusterInput{Cluster: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	// Still readable (ECS keeps INACTIVE clusters describable), no longer writable.
	if got := tagsFlat(tagsList(t, env, arn)); got != "k=v" {
		t.Fatalf("tags of the INACTIVE cluster: %s", got)
	}
	_, err := env.ECS.TagResource(ctx, &awsecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: tagsOf("a", "b")})
	tagsWant(t, err, ecs.CodeClusterNotFound, "inactive")
	_, err = env.ECS.UntagResource(ctx, &awsecs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"k"}})
	tagsWant(t, err, ecs.CodeClusterNotFound, "inactive")
}

func TestTagResourceConcurrentWriters(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	arn := tagsCreateCluster(t, env, "busy")
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := env.ECS.TagResource(ctx, &awsecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: tagsOf(fmt.Sprintf("w%d", i), "x")})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Read-modify-CAS: no writer's tag is lost to another's.
	if got := tagsList(t, env, arn); len(got) != writers {
		t.Fatalf("want %d tags, got %s", writers, tagsFlat(got))
	}
}
