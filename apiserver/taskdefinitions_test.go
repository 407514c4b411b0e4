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

const taskDefARNPrefix = "arn:aws:ecs:us-east-1:123456789012:task-definition/"

// taskDefInput is a minimal valid EC2 registration for family.
func taskDefInput(family string) *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: []types.ContainerDefinition{
			{Name: aws.String("app"), Image: aws.String("busybox"), Memory: aws.Int32(64)},
		},
	}
}

func taskDefRegister(t *testing.T, env *testenv.Env, family string) *types.TaskDefinition {
	t.Helper()
	out, err := env.ECS.RegisterTaskDefinition(context.Background(), taskDefInput(family))
	if err != nil {
		t.Fatalf("register %s: %v", family, err)
	}
	return out.TaskDefinition
}

func taskDefDeregister(t *testing.T, env *testenv.Env, ident string) *types.TaskDefinition {
	t.Helper()
	out, err := env.ECS.DeregisterTaskDefinition(context.Background(), &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(ident)})
	if err != nil {
		t.Fatalf("deregister %s: %v", ident, err)
	}
	return out.TaskDefinition
}

// taskDefWantErr checks err is the API error code with msg in its message.
func taskDefWantErr(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want %s, got %v", code, err)
	}
	if ae.ErrorCode() != code || !strings.Contains(ae.ErrorMessage(), msg) {
		t.Fatalf("got %s: %s; want %s containing %q", ae.ErrorCode(), ae.ErrorMessage(), code, msg)
	}
}

func taskDefListAll(t *testing.T, env *testenv.Env, in ecs.ListTaskDefinitionsInput) []string {
	t.Helper()
	var all []string
	for page := 0; ; page++ {
		out, err := env.ECS.ListTaskDefinitions(context.Background(), &in)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, out.TaskDefinitionArns...)
		if out.NextToken == nil {
			return all
		}
		if page > 100 {
			t.Fatal("pagination does not end")
		}
		in.NextToken = out.NextToken
	}
}

func taskDefFamiliesAll(t *testing.T, env *testenv.Env, in ecs.ListTaskDefinitionFamiliesInput) []string {
	t.Helper()
	var all []string
	for page := 0; ; page++ {
		out, err := env.ECS.ListTaskDefinitionFamilies(context.Background(), &in)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, out.Families...)
		if out.NextToken == nil {
			return all
		}
		if page > 100 {
			t.Fatal("pagination does not end")
		}
		in.NextToken = out.NextToken
	}
}

func TestTaskDefRegisterAndDescribe(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()

	t.Run("register fills ECS's fields", func(t *testing.T) {
		env.Reset(t)
		td := taskDefRegister(t, env, "web")
		if got := aws.ToString(td.TaskDefinitionArn); got != taskDefARNPrefix+"web:1" {
			t.Errorf("arn %s", got)
		}
		if td.Revision != 1 || td.Status != types.TaskDefinitionStatusActive || aws.ToString(td.Family) != "web" {
			t.Errorf("revision %d status %s family %s", td.Revision, td.Status, aws.ToString(td.Family))
		}
		if td.NetworkMode != "" {
			t.Errorf("networkMode %q; ECS leaves it unset", td.NetworkMode)
		}
		if !slices.Equal(td.Compatibilities, []types.Compatibility{"EXTERNAL", "EC2"}) {
			t.Errorf("compatibilities %v", td.Compatibilities)
		}
		if td.RegisteredAt == nil || aws.ToString(td.RegisteredBy) != "arn:aws:iam::123456789012:root" {
			t.Errorf("registeredAt %v registeredBy %v", td.RegisteredAt, aws.ToString(td.RegisteredBy))
		}
		c := td.ContainerDefinitions[0]
		if !aws.ToBool(c.Essential) || c.Cpu != 0 || c.PortMappings == nil || c.Environment == nil || c.MountPoints == nil || c.VolumesFrom == nil {
			t.Errorf("container defaults: %+v", c)
		}
	})

	t.Run("revisions grow and describe finds them", func(t *testing.T) {
		env.Reset(t)
		taskDefRegister(t, env, "web")
		in := taskDefInput("web")
		in.Tags = []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}
		out, err := env.ECS.RegisterTaskDefinition(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if out.TaskDefinition.Revision != 2 || len(out.Tags) != 1 {
			t.Fatalf("revision %d tags %v", out.TaskDefinition.Revision, out.Tags)
		}
		for ident, want := range map[string]int32{
			"web": 2, "web:1": 1, "web:2": 2, taskDefARNPrefix + "web:1": 1, taskDefARNPrefix + "web": 2,
		} {
			d, err := env.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(ident)})
			if err != nil {
				t.Fatalf("%s: %v", ident, err)
			}
			if d.TaskDefinition.Revision != want || d.Tags != nil {
				t.Errorf("%s: revision %d tags %v; want %d and no tags", ident, d.TaskDefinition.Revision, d.Tags, want)
			}
		}
		d, err := env.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
			TaskDefinition: aws.String("web"), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Tags) != 1 || aws.ToString(d.Tags[0].Key) != "team" {
			t.Errorf("tags %v", d.Tags)
		}
		d, err = env.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
			TaskDefinition: aws.String("web:1"), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
		})
		if err != nil {
			t.Fatal(err)
		}
		if d.Tags == nil || len(d.Tags) != 0 {
			t.Errorf("untagged revision: tags %v; want an empty list", d.Tags)
		}
	})

	t.Run("describe errors", func(t *testing.T) {
		env.Reset(t)
		taskDefRegister(t, env, "web")
		for _, ident := range []string{"nope", "nope:1", "web:2", "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1", "arn:aws:ecs:us-east-1:123456789012:cluster/web", "bad family!"} {
			_, err := env.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(ident)})
			taskDefWantErr(t, err, "ClientException", "Unable to describe task definition.")
		}
		_, err := env.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web:latest")})
		taskDefWantErr(t, err, "ClientException", "Invalid revision number. Number: latest")
	})

	t.Run("normalises cpu and memory", func(t *testing.T) {
		env.Reset(t)
		in := taskDefInput("fg")
		in.RequiresCompatibilities = []types.Compatibility{types.CompatibilityFargate}
		in.NetworkMode = types.NetworkModeAwsvpc
		in.Cpu, in.Memory = aws.String("1 vCPU"), aws.String("2 GB")
		in.ContainerDefinitions[0].PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(8080)}}
		out, err := env.ECS.RegisterTaskDefinition(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		td := out.TaskDefinition
		if aws.ToString(td.Cpu) != "1024" || aws.ToString(td.Memory) != "2048" {
			t.Errorf("cpu %s memory %s", aws.ToString(td.Cpu), aws.ToString(td.Memory))
		}
		if !slices.Equal(td.Compatibilities, []types.Compatibility{"EC2", "FARGATE"}) {
			t.Errorf("compatibilities %v", td.Compatibilities)
		}
		pm := td.ContainerDefinitions[0].PortMappings[0]
		if aws.ToInt32(pm.HostPort) != 8080 || pm.Protocol != types.TransportProtocolTcp {
			t.Errorf("port mapping %+v", pm)
		}
		if !slices.ContainsFunc(td.RequiresAttributes, func(a types.Attribute) bool { return aws.ToString(a.Name) == "ecs.capability.task-eni" }) {
			t.Errorf("requiresAttributes %v", td.RequiresAttributes)
		}
	})

	t.Run("rejected registration stores nothing", func(t *testing.T) {
		env.Reset(t)
		bad := taskDefInput("ghost")
		bad.RequiresCompatibilities = []types.Compatibility{types.CompatibilityFargate}
		bad.NetworkMode = types.NetworkModeAwsvpc
		bad.Cpu, bad.Memory = aws.String("1024"), aws.String("1024")
		_, err := env.ECS.RegisterTaskDefinition(ctx, bad)
		taskDefWantErr(t, err, "ClientException", "No Fargate configuration exists for given values: 1024 CPU, 1024 memory.")
		noMem := taskDefInput("ghost")
		noMem.ContainerDefinitions[0].Memory = nil
		_, err = env.ECS.RegisterTaskDefinition(ctx, noMem)
		taskDefWantErr(t, err, "ClientException", "Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' must be specified.")
		badCPU := taskDefInput("ghost")
		badCPU.Cpu = aws.String("many")
		_, err = env.ECS.RegisterTaskDefinition(ctx, badCPU)
		taskDefWantErr(t, err, "InvalidParameterException", "Invalid 'cpu' setting for task")
		badFamily := taskDefInput("ghost town")
		_, err = env.ECS.RegisterTaskDefinition(ctx, badFamily)
		taskDefWantErr(t, err, "ClientException", "Family contains invalid characters.")

		if fams := taskDefFamiliesAll(t, env, ecs.ListTaskDefinitionFamiliesInput{Status: types.TaskDefinitionFamilyStatusAll}); len(fams) != 0 {
			t.Fatalf("families after rejected registrations: %v", fams)
		}
		// The revision counter was not touched either.
		if td := taskDefRegister(t, env, "ghost"); td.Revision != 1 {
			t.Fatalf("first accepted revision %d", td.Revision)
		}
	})
}

func TestTaskDefDeregisterAndDelete(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()

	t.Run("deregister", func(t *testing.T) {
		env.Reset(t)
		taskDefRegister(t, env, "web")
		taskDefRegister(t, env, "web")
		td := taskDefDeregister(t, env, "web:2")
		if td.Status != types.TaskDefinitionStatusInactive || td.DeregisteredAt == nil {
			t.Fatalf("status %s deregisteredAt %v", td.Status, td.DeregisteredAt)
		}
		again := taskDefDeregister(t, env, taskDefARNPrefix+"web:2")
		if again.Status != types.TaskDefinitionStatusInactive || !again.DeregisteredAt.Equal(*td.DeregisteredAt) {
			t.Fatalf("second deregister: status %s deregisteredAt %v", again.Status, again.DeregisteredAt)
		}
		// The family now resolves to the latest ACTIVE revision; the INACTIVE one
		// is still describable by revision.
		d, err := env.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web")})
		if err != nil || d.TaskDefinition.Revision != 1 {
			t.Fatalf("describe web: %v %v", d, err)
		}
		d, err = env.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web:2")})
		if err != nil || d.TaskDefinition.Status != types.TaskDefinitionStatusInactive {
			t.Fatalf("describe web:2: %v %v", d, err)
		}
		_, err = env.ECS.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web")})
		taskDefWantErr(t, err, "ClientException", "revision")
		_, err = env.ECS.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web:9")})
		taskDefWantErr(t, err, "ClientException", "does not exist")
		// A family whose revisions are all INACTIVE cannot be described by name.
		taskDefDeregister(t, env, "web:1")
		_, err = env.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web")})
		taskDefWantErr(t, err, "ClientException", "Unable to describe task definition.")
	})

	t.Run("delete", func(t *testing.T) {
		env.Reset(t)
		taskDefRegister(t, env, "web")
		taskDefRegister(t, env, "web")
		taskDefDeregister(t, env, "web:1")
		out, err := env.ECS.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{
			TaskDefinitions: []string{"web:1", taskDefARNPrefix + "web:2", "web:7"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.TaskDefinitions) != 1 || out.TaskDefinitions[0].Status != types.TaskDefinitionStatusDeleteInProgress ||
			out.TaskDefinitions[0].DeleteRequestedAt == nil || out.TaskDefinitions[0].Revision != 1 {
			t.Fatalf("deleted %+v", out.TaskDefinitions)
		}
		if len(out.Failures) != 2 {
			t.Fatalf("failures %+v", out.Failures)
		}
		reasons := map[string]string{}
		for _, f := range out.Failures {
			reasons[aws.ToString(f.Arn)] = aws.ToString(f.Reason)
		}
		if !strings.Contains(reasons[taskDefARNPrefix+"web:2"], "still in ACTIVE status") || !strings.Contains(reasons["web:7"], "does not exist") {
			t.Fatalf("failure reasons %v", reasons)
		}
		// No task uses web:1, so it is gone already.
		_, err = env.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web:1")})
		taskDefWantErr(t, err, "ClientException", "Unable to describe task definition.")
		for _, st := range []types.TaskDefinitionStatus{types.TaskDefinitionStatusInactive, types.TaskDefinitionStatusDeleteInProgress} {
			if arns := taskDefListAll(t, env, ecs.ListTaskDefinitionsInput{Status: st}); len(arns) != 0 {
				t.Fatalf("%s: %v", st, arns)
			}
		}
		// The revision number is never handed out again.
		if td := taskDefRegister(t, env, "web"); td.Revision != 3 {
			t.Fatalf("revision after delete %d", td.Revision)
		}
		// Deleting every revision of a family and registering again continues the count.
		taskDefDeregister(t, env, "web:2")
		taskDefDeregister(t, env, "web:3")
		if _, err := env.ECS.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{"web:2", "web:3"}}); err != nil {
			t.Fatal(err)
		}
		if fams := taskDefFamiliesAll(t, env, ecs.ListTaskDefinitionFamiliesInput{Status: types.TaskDefinitionFamilyStatusAll}); len(fams) != 0 {
			t.Fatalf("families after deleting every revision: %v", fams)
		}
		if td := taskDefRegister(t, env, "web"); td.Revision != 4 {
			t.Fatalf("revision after deleting the family %d", td.Revision)
		}
	})

	t.Run("delete errors", func(t *testing.T) {
		env.Reset(t)
		taskDefRegister(t, env, "web")
		_, err := env.ECS.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{"web"}})
		taskDefWantErr(t, err, "ClientException", "revision")
		many := make([]string, 11)
		for i := range many {
			many[i] = fmt.Sprintf("web:%d", i+1)
		}
		_, err = env.ECS.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: many})
		taskDefWantErr(t, err, "InvalidParameterException", "taskDefinitions")
		_, err = env.ECS.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{"web:x"}})
		taskDefWantErr(t, err, "ClientException", "Invalid revision number. Number: x")
	})
}

func TestTaskDefLists(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	// web:1..3 (2 INACTIVE), web-a:1, webapp:1 (INACTIVE), api:1..2.
	for _, f := range []string{"web", "web", "web", "web-a", "webapp", "api", "api"} {
		taskDefRegister(t, env, f)
	}
	taskDefDeregister(t, env, "web:2")
	taskDefDeregister(t, env, "webapp:1")
	arn := func(s ...string) []string {
		for i := range s {
			s[i] = taskDefARNPrefix + s[i]
		}
		return s
	}

	t.Run("list task definitions", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			in   ecs.ListTaskDefinitionsInput
			want []string
		}{
			{"default ACTIVE ASC", ecs.ListTaskDefinitionsInput{}, arn("api:1", "api:2", "web:1", "web:3", "web-a:1")},
			{"DESC", ecs.ListTaskDefinitionsInput{Sort: types.SortOrderDesc}, arn("web-a:1", "web:3", "web:1", "api:2", "api:1")},
			{"family is exact", ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("web")}, arn("web:1", "web:3")},
			{"family DESC", ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("web"), Sort: types.SortOrderDesc}, arn("web:3", "web:1")},
			{"INACTIVE", ecs.ListTaskDefinitionsInput{Status: types.TaskDefinitionStatusInactive}, arn("web:2", "webapp:1")},
			{"paged", ecs.ListTaskDefinitionsInput{MaxResults: aws.Int32(2)}, arn("api:1", "api:2", "web:1", "web:3", "web-a:1")},
			{"paged DESC", ecs.ListTaskDefinitionsInput{MaxResults: aws.Int32(1), Sort: types.SortOrderDesc}, arn("web-a:1", "web:3", "web:1", "api:2", "api:1")},
			{"unknown family", ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("nope")}, nil},
		} {
			if got := taskDefListAll(t, env, tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("%s:\n got %v\nwant %v", tc.name, got, tc.want)
			}
		}
		out, err := env.ECS.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{MaxResults: aws.Int32(2)})
		if err != nil || len(out.TaskDefinitionArns) != 2 || out.NextToken == nil {
			t.Fatalf("first page %v %v", out, err)
		}
		_, err = env.ECS.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{MaxResults: aws.Int32(101)})
		taskDefWantErr(t, err, "InvalidParameterException", "maxResults")
		_, err = env.ECS.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{NextToken: aws.String("garbage")})
		taskDefWantErr(t, err, "InvalidParameterException", "nextToken")
	})

	t.Run("list families", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			in   ecs.ListTaskDefinitionFamiliesInput
			want []string
		}{
			{"default ACTIVE", ecs.ListTaskDefinitionFamiliesInput{}, []string{"api", "web", "web-a"}},
			{"INACTIVE", ecs.ListTaskDefinitionFamiliesInput{Status: types.TaskDefinitionFamilyStatusInactive}, []string{"webapp"}},
			{"ALL", ecs.ListTaskDefinitionFamiliesInput{Status: types.TaskDefinitionFamilyStatusAll}, []string{"api", "web", "web-a", "webapp"}},
			{"prefix", ecs.ListTaskDefinitionFamiliesInput{FamilyPrefix: aws.String("web"), Status: types.TaskDefinitionFamilyStatusAll}, []string{"web", "web-a", "webapp"}},
			{"paged", ecs.ListTaskDefinitionFamiliesInput{MaxResults: aws.Int32(1), Status: types.TaskDefinitionFamilyStatusAll}, []string{"api", "web", "web-a", "webapp"}},
		} {
			if got := taskDefFamiliesAll(t, env, tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("%s:\n got %v\nwant %v", tc.name, got, tc.want)
			}
		}
		_, err := env.ECS.ListTaskDefinitionFamilies(ctx, &ecs.ListTaskDefinitionFamiliesInput{MaxResults: aws.Int32(0)})
		taskDefWantErr(t, err, "InvalidParameterException", "maxResults")
	})
}

func TestTaskDefConcurrentRegistration(t *testing.T) {
	env := testenv.Start(t)
	const n = 20
	revs := make([]int32, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := env.ECS.RegisterTaskDefinition(context.Background(), taskDefInput("busy"))
			if err != nil {
				errs <- err
				return
			}
			revs[i] = out.TaskDefinition.Revision
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	slices.Sort(revs)
	for i, r := range revs {
		if r != int32(i+1) {
			t.Fatalf("revisions %v; want 1..%d each once", revs, n)
		}
	}
	if arns := taskDefListAll(t, env, ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("busy")}); len(arns) != n {
		t.Fatalf("%d revisions listed", len(arns))
	}
}

// taskDefBody records the last response body so the test can see which members
// are on the wire.
type taskDefBody struct {
	mu   sync.Mutex
	last []byte
}

func (r *taskDefBody) Do(req *http.Request) (*http.Response, error) {
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

func TestTaskDefWireShape(t *testing.T) {
	env := testenv.Start(t)
	rec := &taskDefBody{}
	client := ecs.New(ecs.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(env.URL), HTTPClient: rec, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
	in := taskDefInput("shape")
	in.ContainerDefinitions[0].PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(80)}}
	if _, err := client.RegisterTaskDefinition(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	var top struct {
		TaskDefinition map[string]json.RawMessage `json:"taskDefinition"`
	}
	if err := json.Unmarshal(rec.last, &top); err != nil {
		t.Fatal(err)
	}
	td := top.TaskDefinition
	for key, want := range map[string]string{
		"volumes": `[]`, "placementConstraints": `[]`, "requiresAttributes": `[]`, "compatibilities": `["EXTERNAL","EC2"]`,
		"status": `"ACTIVE"`, "revision": `1`, "family": `"shape"`,
	} {
		if got := string(td[key]); got != want {
			t.Errorf("%s = %s; want %s", key, got, want)
		}
	}
	for _, absent := range []string{"networkMode", "requiresCompatibilities", "cpu", "memory", "deregisteredAt"} {
		if v, ok := td[absent]; ok {
			t.Errorf("%s present (%s); ECS omits it", absent, v)
		}
	}
	if _, err := json.Number(string(td["registeredAt"])).Float64(); err != nil {
		t.Errorf("registeredAt %s is not epoch seconds", td["registeredAt"])
	}
	var cds []map[string]json.RawMessage
	if err := json.Unmarshal(td["containerDefinitions"], &cds); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"cpu": `0`, "essential": `true`, "environment": `[]`, "mountPoints": `[]`, "volumesFrom": `[]`, "systemControls": `[]`,
		"portMappings": `[{"containerPort":80,"hostPort":0,"protocol":"tcp"}]`,
	} {
		if got := string(cds[0][key]); got != want {
			t.Errorf("container %s = %s; want %s", key, got, want)
		}
	}
}
