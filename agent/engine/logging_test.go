package engine

import (
	"bytes"
	"context"
	"log/slog"
	"maps"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
)

// What a Fargate Terraform example asks for.
func awslogsConfig() *ecs.LogConfiguration {
	return &ecs.LogConfiguration{LogDriver: ecs.LogDriverAwslogs, Options: map[string]string{
		"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1",
		"awslogs-stream-prefix": "web", "awslogs-create-group": "true",
	}}
}

func TestBuildSpecAwslogs(t *testing.T) {
	const agentEndpoint = "http://127.0.0.1:4566"
	for _, tc := range []struct {
		name       string
		lc         *ecs.LogConfiguration
		endpoint   string // the agent's
		wantDriver string
		wantOpts   map[string]string
	}{
		{
			name: "definition names an endpoint", endpoint: agentEndpoint,
			lc: func() *ecs.LogConfiguration {
				lc := awslogsConfig()
				lc.Options[awslogsEndpointOption] = "http://127.0.0.1:9999"
				return lc
			}(),
			wantDriver: "awslogs",
			wantOpts: map[string]string{"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1",
				"awslogs-stream": "web/app/abc", "awslogs-create-group": "true", "awslogs-endpoint": "http://127.0.0.1:9999"},
		},
		{
			name: "agent endpoint added", lc: awslogsConfig(), endpoint: agentEndpoint,
			wantDriver: "awslogs",
			wantOpts: map[string]string{"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1",
				"awslogs-stream": "web/app/abc", "awslogs-create-group": "true", "awslogs-endpoint": agentEndpoint},
		},
		{
			name: "own stream name kept", endpoint: agentEndpoint,
			lc: &ecs.LogConfiguration{LogDriver: ecs.LogDriverAwslogs, Options: map[string]string{
				"awslogs-group": "g", "awslogs-stream": "mine", "awslogs-stream-prefix": "web"}},
			wantDriver: "awslogs",
			wantOpts:   map[string]string{"awslogs-group": "g", "awslogs-stream": "mine", "awslogs-endpoint": agentEndpoint},
		},
		{
			name: "no endpoint: json-file", lc: awslogsConfig(),
			wantDriver: "json-file",
		},
		{
			name: "other driver passes through", endpoint: agentEndpoint,
			lc:         &ecs.LogConfiguration{LogDriver: ecs.LogDriverFluentd, Options: map[string]string{"fluentd-address": "127.0.0.1:24224"}},
			wantDriver: "fluentd", wantOpts: map[string]string{"fluentd-address": "127.0.0.1:24224"},
		},
		{name: "no log configuration", endpoint: agentEndpoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := baseContext()
			sc.awslogsEndpoint = tc.endpoint
			d := ecs.ContainerDefinition{Name: "app", Image: "img", LogConfiguration: tc.lc}
			var before map[string]string
			if tc.lc != nil {
				before = maps.Clone(tc.lc.Options)
			}
			s := specFor(t, sc, d, nil)
			if s.LogDriver != tc.wantDriver || !maps.Equal(s.LogOptions, tc.wantOpts) {
				t.Errorf("log driver %q options %v, want %q %v", s.LogDriver, s.LogOptions, tc.wantDriver, tc.wantOpts)
			}
			// The definition (what metadata shows) is untouched.
			if tc.lc != nil && !maps.Equal(tc.lc.Options, before) {
				t.Errorf("definition's options changed: %v, were %v", tc.lc.Options, before)
			}
		})
	}
}

func TestAwslogsFallbacks(t *testing.T) {
	cs := []*container{
		{name: "a", def: ecs.ContainerDefinition{LogConfiguration: awslogsConfig()}},
		{name: "b", def: ecs.ContainerDefinition{}},
		{name: "c", def: ecs.ContainerDefinition{LogConfiguration: &ecs.LogConfiguration{LogDriver: ecs.LogDriverJsonFile}}},
		{name: "d", def: ecs.ContainerDefinition{LogConfiguration: awslogsConfig()}},
	}
	if got := awslogsFallbacks(cs, ""); !reflect.DeepEqual(got, []string{"a", "d"}) {
		t.Errorf("fallbacks without endpoint %v", got)
	}
	if got := awslogsFallbacks(cs, "http://127.0.0.1:1"); got != nil {
		t.Errorf("fallbacks with endpoint %v", got)
	}
}

func TestCheckAwslogsEndpoint(t *testing.T) {
	for ep, ok := range map[string]bool{
		"": true, "http://127.0.0.1:4566": true, "https://logs.local": true,
		"127.0.0.1:4566": false, "ftp://x": false, "http://": false, "http://[::1": false,
	} {
		if err := CheckAwslogsEndpoint(ep); (err == nil) != ok {
			t.Errorf("CheckAwslogsEndpoint(%q) = %v", ep, err)
		}
	}
}

// syncBuffer collects the engine's log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A task whose containers log with awslogs reaches RUNNING on an engine
// without an awslogs endpoint (json-file, said once for the task) and on one
// with it (the endpoint added); metadata shows the definition's configuration.
func TestAwslogsTaskRuns(t *testing.T) {
	for _, endpoint := range []string{"", "http://127.0.0.1:4566"} {
		t.Run("endpoint="+endpoint, func(t *testing.T) {
			f := newFakeRuntime()
			var logs syncBuffer
			rep := &reports{}
			e, err := New(Config{
				Runtime: f, Reporter: rep,
				InstanceArn: "arn:aws:ecs:us-east-1:123456789012:container-instance/shop/i1",
				ClusterArn:  "arn:aws:ecs:us-east-1:123456789012:cluster/shop",
				Region:      "us-east-1", PauseImage: "pause", AwsvpcNetwork: "fake", AwsvpcSubnet: "10.9.0.0/24",
				PausePoolSize: -1, DefaultStopTimeout: 5 * time.Second, AwslogsEndpoint: endpoint,
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			if sc := (&task{e: e}).specContext(); sc.awslogsEndpoint != endpoint {
				t.Fatal("task.specContext (start.go) does not pass Config.AwslogsEndpoint")
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- e.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })

			a := fargateTask("EC2", ecs.NetworkModeAwsvpc)
			for i := range a.Definition.ContainerDefinitions {
				a.Definition.ContainerDefinitions[i].LogConfiguration = awslogsConfig()
			}
			e.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
			rep.wait(t, a.TaskArn, "RUNNING")

			for _, name := range []string{"app", "side"} {
				specs := f.specsOf(name)
				if len(specs) != 1 {
					t.Fatalf("%s created %d times", name, len(specs))
				}
				s := specs[0]
				if endpoint == "" {
					if s.LogDriver != "json-file" || s.LogOptions != nil {
						t.Errorf("%s logs with %q %v, want json-file", name, s.LogDriver, s.LogOptions)
					}
				} else if s.LogDriver != "awslogs" || s.LogOptions["awslogs-endpoint"] != endpoint || s.LogOptions["awslogs-group"] != "/ecs/web" ||
					s.LogOptions["awslogs-stream"] != "web/"+name+"/"+a.TaskArn[strings.LastIndex(a.TaskArn, "/")+1:] {
					t.Errorf("%s logs with %q %v, want awslogs to %s", name, s.LogDriver, s.LogOptions, endpoint)
				}
			}
			n := strings.Count(logs.String(), awslogsFallbackMessage)
			if endpoint == "" && (n != 1 || !strings.Contains(logs.String(), "containers=\"[app side]\"")) {
				t.Errorf("fallback said %d times (start.go calls logAwslogsFallback once the images are pulled); log:\n%s", n, logs.String())
			}
			if endpoint != "" && n != 0 {
				t.Errorf("fallback said with an endpoint; log:\n%s", logs.String())
			}

			tk, _, ok := e.Lookup(f.specsOf("app")[0].Labels[labelToken])
			if !ok {
				t.Fatal("no metadata for the app container")
			}
			seen := 0
			for _, c := range tk.Containers {
				if c.Name != "app" && c.Name != "side" {
					continue // the pause container
				}
				seen++
				if c.LogDriver != "awslogs" || !maps.Equal(c.LogOptions, awslogsConfig().Options) {
					t.Errorf("metadata of %s shows %q %v, want the definition's", c.Name, c.LogDriver, c.LogOptions)
				}
			}
			if seen != 2 {
				t.Errorf("metadata shows %d of the task's 2 containers", seen)
			}
		})
	}
}
