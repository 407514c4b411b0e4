package docker_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecsd/ecsd/agent/runtime"
	"github.com/ecsd/ecsd/internal/testimage"
)

// httpdSpec serves /var/www (index.html says "ecsd") on port.
func httpdSpec(port int) runtime.ContainerSpec {
	return runtime.ContainerSpec{Command: []string{"httpd", "-f", "-p", strconv.Itoa(port), "-h", "/var/www"}}
}

// httpGet fetches url, retrying while the server comes up. Only addresses of
// containers this test created are ever asked.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDynamicHostPorts(t *testing.T) {
	t.Parallel()
	r := rt(t)
	spec := httpdSpec(8080)
	spec.PortBindings = []runtime.PortBinding{
		{ContainerPort: 8080},
		{ContainerPort: 5353, Protocol: "udp", HostIP: "127.0.0.1"},
	}
	id := run(t, r, spec)
	st, err := r.Inspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var tcp, udp *runtime.PortBinding
	for i, p := range st.Ports {
		if p.HostPort < 32768 || p.HostPort > 60999 {
			t.Errorf("host port %d outside Docker's dynamic range", p.HostPort)
		}
		switch {
		case p.ContainerPort == 8080 && p.Protocol == "tcp" && p.HostIP == "0.0.0.0":
			tcp = &st.Ports[i]
		case p.ContainerPort == 5353 && p.Protocol == "udp":
			udp = &st.Ports[i]
		}
	}
	if tcp == nil || udp == nil || udp.HostIP != "127.0.0.1" {
		t.Fatalf("ports: %+v", st.Ports)
	}
	if body := httpGet(t, "http://127.0.0.1:"+strconv.Itoa(tcp.HostPort)+"/"); body != "ecsd\n" {
		t.Errorf("body %q", body)
	}
	list, err := r.List(context.Background(), testLabels(t), false)
	if err != nil || len(list) != 1 || !containsPort(list[0].Ports, *tcp) {
		t.Errorf("List ports: %+v, %v", list, err)
	}
}

func containsPort(l []runtime.PortBinding, p runtime.PortBinding) bool {
	for _, x := range l {
		if x == p {
			return true
		}
	}
	return false
}

// TestUserNetwork is the awsvpc building block: a container with a fixed IP on
// an ecsd bridge network, and another sharing its network namespace.
func TestUserNetwork(t *testing.T) {
	t.Parallel()
	r := rt(t)
	ctx := context.Background()
	name := "ecsd-test-" + runID
	const subnet, ip = "172.31.250.0/24", "172.31.250.10"

	netID, err := r.EnsureNetwork(ctx, name, subnet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.RemoveNetwork(context.Background(), name); err != nil {
			t.Errorf("remove network: %v", err)
		}
	})
	if again, err := r.EnsureNetwork(ctx, name, "172.31.250.7/24"); err != nil || again != netID {
		t.Errorf("EnsureNetwork again: %q, %v (want %q)", again, err, netID)
	}
	if _, err := r.EnsureNetwork(ctx, name, "172.31.251.0/24"); !errors.Is(err, runtime.ErrConflict) {
		t.Errorf("EnsureNetwork with another subnet: %v", err)
	}

	spec := httpdSpec(8080)
	spec.Network = &runtime.NetworkAttachment{Name: name, IPv4: ip, Aliases: []string{"web"}}
	web := run(t, r, spec)
	st, err := r.Inspect(ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	n, ok := st.Networks[name]
	if !ok || n.IPv4 != ip || n.PrefixLen != 24 || n.Gateway != "172.31.250.1" || n.MAC == "" || n.NetworkID != netID || st.NetworkMode != name {
		t.Fatalf("network state: mode=%q %+v", st.NetworkMode, st.Networks)
	}
	if !contains(n.Aliases, "web") {
		t.Errorf("aliases %v", n.Aliases)
	}
	if body := httpGet(t, "http://"+ip+":8080/"); body != "ecsd\n" {
		t.Errorf("body %q", body)
	}

	// A container joined to web's namespace reaches it on localhost and sees
	// the same address.
	script := `wget -qO- http://127.0.0.1:8080/ | grep -qx ecsd || exit 2; ip -4 addr | grep -q ` + ip + ` || exit 3`
	if code := runToExit(t, r, runtime.ContainerSpec{NetworkMode: "container:" + web}, script); code != 0 {
		t.Errorf("container:<id> client exited %d", code)
	}
	// Publishing ports is not possible in a shared namespace; Docker says so.
	bad := runtime.ContainerSpec{Image: testimage.Busybox, NetworkMode: "container:" + web, Labels: testLabels(t),
		PortBindings: []runtime.PortBinding{{ContainerPort: 80}}}
	if id, err := r.Create(ctx, bad); err == nil {
		_ = r.Remove(ctx, id, true)
		t.Error("port publishing in container: mode was accepted")
	} else if !strings.Contains(err.Error(), "conflicting options") {
		t.Logf("port publishing in container: mode: %v", err)
	}

	// Host mode shares the host's network: no per-container address.
	id := run(t, r, runtime.ContainerSpec{NetworkMode: "host", Command: []string{"true"}})
	if st := waitExited(t, r, id); st.ExitCode != 0 || st.NetworkMode != "host" {
		t.Errorf("host mode: %+v", st)
	}
	// None: only loopback.
	if code := runToExit(t, r, runtime.ContainerSpec{NetworkMode: "none"}, `[ "$(ip -4 addr | grep -c inet)" = 1 ]`); code != 0 {
		t.Errorf("none mode check exited %d", code)
	}
}
