package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ecsd/ecsd/agent/engine"
	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
)

func detail(a ecs.Attachment, name string) string {
	for _, d := range a.Details {
		if d.Name == name {
			return d.Value
		}
	}
	return ""
}

// An awsvpc task has its own address, reachable from the host; its
// containers share localhost; its attachment is reported as ECS does; the
// metadata endpoint answers inside it.
func TestAwsvpc(t *testing.T) {
	t.Parallel()
	for _, pool := range []int{-1, 1} {
		t.Run(fmt.Sprintf("pool=%d", pool), func(t *testing.T) {
			t.Parallel()
			testAwsvpc(t, pool)
		})
	}
}

func testAwsvpc(t *testing.T, pool int) {
	h := start(t, "", func(c *engine.Config) { c.PausePoolSize = pool })
	out := outDir(t)
	web := busybox("web", "httpd", "-f", "-p", "80", "-h", "/var/www")
	web.PortMappings = []ecs.PortMapping{{ContainerPort: i32(80)}}
	side := busybox("side", "sh", "-c",
		`until wget -qO /out/local http://127.0.0.1:80/; do sleep 0.2; done
wget -qO /out/meta.tmp "$ECS_CONTAINER_METADATA_URI_V4/task" && mv /out/meta.tmp /out/meta
exec sleep 300`)
	side.Essential = boolp(false)
	a := assignment("vpc", ecs.NetworkModeAwsvpc, web, side)
	mountOut(&a, out, "side")
	h.eng.Apply(agentapi.Tasks{Full: true, Tasks: []agentapi.TaskAssignment{a}})

	sc := h.rec.waitStatus(t, a.TaskArn, "RUNNING", 30*time.Second)
	if len(sc.Attachments) != 1 {
		t.Fatalf("attachments = %+v", sc.Attachments)
	}
	att := sc.Attachments[0]
	ip := detail(att, "privateIPv4Address")
	addr, err := netip.ParseAddr(ip)
	if err != nil || !netip.MustParsePrefix(netSubnet).Contains(addr) {
		t.Fatalf("privateIPv4Address %q not in %s", ip, netSubnet)
	}
	if att.Type != "ElasticNetworkInterface" || att.Status != "ATTACHED" || att.Id == "" ||
		detail(att, "privateDnsName") != "ip-"+strings.ReplaceAll(ip, ".", "-")+".ec2.internal" ||
		len(detail(att, "macAddress")) != 17 || !strings.HasPrefix(detail(att, "subnetId"), "subnet-") ||
		!strings.HasPrefix(detail(att, "networkInterfaceId"), "eni-") {
		t.Errorf("attachment = %+v", att)
	}
	for _, c := range sc.Containers {
		if len(c.NetworkInterfaces) != 1 || c.NetworkInterfaces[0].PrivateIpv4Address != ip || c.NetworkInterfaces[0].AttachmentId != att.Id {
			t.Errorf("%s networkInterfaces = %+v", c.Name, c.NetworkInterfaces)
		}
		if len(c.NetworkBindings) != 0 {
			t.Errorf("%s networkBindings = %+v", c.Name, c.NetworkBindings)
		}
	}
	if body := httpGet(t, "http://"+ip+":80/", 10*time.Second); body != "ecsd\n" {
		t.Errorf("via the task address: %q", body)
	}
	if got := waitFile(t, out+"/local", 10*time.Second); got != "ecsd\n" {
		t.Errorf("via localhost from the other container: %q", got)
	}

	var meta struct {
		TaskARN    string
		Containers []struct {
			Name, Type, DockerId string
			Networks             []struct {
				NetworkMode              string
				IPv4Addresses            []string
				PrivateDNSName           string
				SubnetGatewayIpv4Address string
			}
		}
	}
	if err := json.Unmarshal([]byte(waitFile(t, out+"/meta", 10*time.Second)), &meta); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, c := range meta.Containers {
		names[c.Name] = c.Type
		if len(c.Networks) != 1 || c.Networks[0].NetworkMode != "awsvpc" || c.Networks[0].IPv4Addresses[0] != ip ||
			c.Networks[0].PrivateDNSName == "" || !strings.Contains(c.Networks[0].SubnetGatewayIpv4Address, "/24") {
			t.Errorf("%s networks = %+v", c.Name, c.Networks)
		}
	}
	if meta.TaskARN != a.TaskArn || names["web"] != "NORMAL" || names["side"] != "NORMAL" || names["~internal~ecs~pause"] != "CNI_PAUSE" {
		t.Errorf("metadata: %s %v\n%s", meta.TaskARN, names, waitFile(t, out+"/meta", time.Second))
	}

	h.eng.Apply(agentapi.Tasks{Full: true, Tasks: []agentapi.TaskAssignment{stopped(a)}})
	sc = h.rec.waitStatus(t, a.TaskArn, "STOPPED", 30*time.Second)
	if sc.Attachments[0].Status != "DELETED" {
		t.Errorf("attachment at STOPPED: %s", sc.Attachments[0].Status)
	}
	// The pause container is gone with the task's network.
	for _, c := range taskContainers(t, h.rt, a.TaskArn) {
		if c.Labels["ecsd.kind"] == "pause" {
			t.Errorf("pause container %s left after STOPPED", c.Name)
		}
	}
}

// The pause container dying takes the task's network: the task stops.
func TestAwsvpcPauseDies(t *testing.T) {
	t.Parallel()
	h := start(t, "")
	a := assignment("vpcdie", ecs.NetworkModeAwsvpc, busybox("app", "sleep", "300"))
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
	h.rec.waitStatus(t, a.TaskArn, "RUNNING", 30*time.Second)
	var pause string
	for _, c := range taskContainers(t, h.rt, a.TaskArn) {
		if c.Labels["ecsd.kind"] == "pause" {
			pause = c.ID
		}
	}
	if pause == "" {
		t.Fatal("no pause container labelled with the task")
	}
	if err := h.rt.Kill(context.Background(), pause, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	sc := h.rec.waitStatus(t, a.TaskArn, "STOPPED", 30*time.Second)
	if sc.StopCode != "EssentialContainerExited" {
		t.Errorf("stopCode = %q (%s)", sc.StopCode, sc.StoppedReason)
	}
}
