package engine

import (
	"fmt"
	"maps"
	"net/url"

	"github.com/ecsd/ecsd/api/ecs"
)

// Docker's awslogs driver sends a container's output to CloudWatch Logs. On
// AWS the agent relies on the regional endpoint and the instance's
// credentials; an ecsd machine reaches neither, and a container whose driver
// cannot start does not start at all. So awslogs containers log to an
// endpoint the operator names (--awslogs-endpoint: a CloudWatch Logs
// compatible service), or, without one, to Docker's json-file driver, and the
// task runs as it would on ECS. Only the runtime spec changes: the task's
// metadata shows the logConfiguration the definition asked for, as ECS's.
const (
	logDriverAwslogs      = "awslogs"
	logDriverJSONFile     = "json-file"
	awslogsEndpointOption = "awslogs-endpoint"

	awslogsStreamPrefixOption = "awslogs-stream-prefix"
	awslogsStreamOption       = "awslogs-stream"
)

// awslogsFallbackMessage explains a container logging to json-file instead.
const awslogsFallbackMessage = "awslogs needs an endpoint on this machine: set --awslogs-endpoint; logging to json-file"

// logDriver is the driver and options container name of task taskID runs
// with, given its log configuration lc and the agent's awslogs endpoint (""
// = none). fallback is true when an awslogs container logs to json-file for
// want of an endpoint. Other drivers pass through; options of theirs that name
// remote endpoints are the operator's. lc is never modified.
func logDriver(lc *ecs.LogConfiguration, endpoint, name, taskID string) (driver string, opts map[string]string, fallback bool) {
	if lc == nil {
		return "", nil, false
	}
	driver, opts = string(lc.LogDriver), lc.Options
	if driver != logDriverAwslogs {
		return driver, opts, false
	}
	own := opts[awslogsEndpointOption] != ""
	if !own && endpoint == "" {
		return logDriverJSONFile, nil, true
	}
	opts = make(map[string]string, len(lc.Options)+1)
	maps.Copy(opts, lc.Options)
	if !own {
		opts[awslogsEndpointOption] = endpoint
	}
	// awslogs-stream-prefix is the ECS agent's, unknown to Docker (which
	// refuses it): the stream is named <prefix>/<container>/<task id>, as ECS
	// names it.
	if prefix, ok := opts[awslogsStreamPrefixOption]; ok {
		delete(opts, awslogsStreamPrefixOption)
		if prefix != "" && opts[awslogsStreamOption] == "" {
			opts[awslogsStreamOption] = prefix + "/" + name + "/" + taskID
		}
	}
	return driver, opts, false
}

// awslogsFallbacks names the task's containers that will log to json-file
// because awslogs has no endpoint.
func awslogsFallbacks(containers []*container, endpoint string) []string {
	var names []string
	for _, c := range containers {
		if _, _, fb := logDriver(c.def.LogConfiguration, endpoint, c.name, ""); fb {
			names = append(names, c.name)
		}
	}
	return names
}

// logAwslogsFallback says, once per task (before its containers are
// created), which of them log to json-file and why.
func (t *task) logAwslogsFallback() {
	if names := awslogsFallbacks(t.containers, t.e.cfg.AwslogsEndpoint); len(names) > 0 {
		t.log.Info(awslogsFallbackMessage, "containers", names)
	}
}

// CheckAwslogsEndpoint reports an endpoint Docker's awslogs driver cannot
// use; "" (none) is fine.
func CheckAwslogsEndpoint(endpoint string) error {
	if endpoint == "" {
		return nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an http or https URL", endpoint)
	}
	return nil
}
