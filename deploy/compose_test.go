package deploy_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// mcpstreamImage is the image of the services that run the mcpstream
// command (deploy/Dockerfile).
const mcpstreamImage = "mcpstream:dev"

// loadCompose loads docker-compose.yml with the Compose specification's
// loader (the one `docker compose` uses), validating it against the
// schema, with an empty environment.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	ctx := context.Background()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	details, err := loader.LoadConfigFiles(ctx, []string{filepath.Join(abs, "docker-compose.yml")}, abs)
	if err != nil {
		t.Fatalf("reading docker-compose.yml: %v", err)
	}
	details.Environment = types.Mapping{}
	p, err := loader.LoadWithContext(ctx, *details, func(o *loader.Options) { o.SetProjectName("mcpstream", true) })
	if err != nil {
		t.Fatalf("loading docker-compose.yml: %v", err)
	}
	return p
}

// scalable reports whether s is a service meant to run as many replicas
// (`--scale`): an mcpstream gateway or worker.
func scalable(s types.ServiceConfig) bool {
	return s.Image == mcpstreamImage && len(s.Command) > 0 && (s.Command[0] == "gateway" || s.Command[0] == "worker")
}

// TestComposeServices: every service has a health check or waits on a
// dependency's condition; the dependencies' conditions can be met (a
// service waited on as healthy has a health check, one waited on to
// complete does not restart); images are pinned by a tag; the scalable
// services have no container name and publish no host port, and run more
// than one replica; published ports are on loopback; bind-mounted files
// exist.
func TestComposeServices(t *testing.T) {
	p := loadCompose(t)
	for _, want := range []string{"nats-1", "nats-2", "nats-3", "provision", "gateway", "worker", "lb", "jaeger", "prometheus", "grafana"} {
		if _, ok := p.Services[want]; !ok {
			t.Errorf("no service %s", want)
		}
	}
	for name, s := range p.Services {
		hasCheck := s.HealthCheck != nil && !s.HealthCheck.Disable && len(s.HealthCheck.Test) > 0
		waits := false
		for dep, d := range s.DependsOn {
			ds, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on %s, no service", name, dep)
				continue
			}
			switch d.Condition {
			case types.ServiceConditionHealthy:
				waits = true
				if ds.HealthCheck == nil || ds.HealthCheck.Disable {
					t.Errorf("%s waits for %s to be healthy, which has no health check", name, dep)
				}
			case types.ServiceConditionCompletedSuccessfully:
				waits = true
				if ds.Restart != "no" {
					t.Errorf("%s waits for %s to complete, which restarts %q", name, dep, ds.Restart)
				}
			case types.ServiceConditionStarted:
			default:
				t.Errorf("%s depends on %s with condition %q", name, dep, d.Condition)
			}
		}
		if !hasCheck && !waits {
			t.Errorf("%s has neither a health check nor a dependency condition (healthy or completed)", name)
		}
		if repo, tag, ok := strings.Cut(s.Image, ":"); !ok || tag == "" || tag == "latest" || repo == "" {
			t.Errorf("%s: image %q is not pinned by a tag", name, s.Image)
		}
		for _, port := range s.Ports {
			if port.Published != "" && port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s on %q, not on loopback", name, port.Published, port.HostIP)
			}
		}
		if scalable(s) {
			if s.ContainerName != "" {
				t.Errorf("%s is scalable but has container_name %q", name, s.ContainerName)
			}
			if len(s.Ports) > 0 {
				t.Errorf("%s is scalable but publishes ports %v", name, s.Ports)
			}
			if s.Deploy == nil || s.Deploy.Replicas == nil || *s.Deploy.Replicas < 2 {
				t.Errorf("%s is scalable but does not run several replicas", name)
			}
		}
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s mounts %s: %v", name, v.Source, err)
			}
		}
	}
}

// TestComposeCommands: the command of each mcpstream service is one of
// gateway, worker and provision with flags the binary accepts, each
// MCPSTREAM_* variable of its environment is a flag's of that command in
// the README's configuration table (or a NATS secret's), and the values of
// those variables are accepted by their flags: the binary itself parses
// the command with the variables given as the flags they stand for.
func TestComposeCommands(t *testing.T) {
	p := loadCompose(t)
	vars := configVariables(t)
	n := 0
	for name, s := range p.Services {
		if s.Image != mcpstreamImage {
			continue
		}
		n++
		env := map[string]string{}
		for k, v := range s.Environment {
			if v == nil {
				t.Errorf("%s: %s has no value", name, k)
				continue
			}
			env[k] = *v
		}
		checkCommand(t, name, s.Command, env, nil, vars)
		if scalable(s) {
			checkHealthCommand(t, name, s.HealthCheck)
		}
	}
	if n < 3 {
		t.Errorf("%d mcpstream services, want provision, gateway and worker", n)
	}
}

// checkHealthCommand: the health check of a gateway or worker runs the mcpstream binary (at
// the path deploy/Dockerfile installs it) names a command and flags the
// binary accepts.
func checkHealthCommand(t *testing.T, what string, hc *types.HealthCheckConfig) {
	t.Helper()
	const path = "/usr/local/bin/mcpstream"
	if hc == nil || len(hc.Test) < 3 || hc.Test[0] != "CMD" || hc.Test[1] != path {
		t.Errorf("%s: health check %v does not run %s", what, hc, path)
		return
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "deploy/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(dockerfile, []byte(" "+path+"\n")) {
		t.Errorf("deploy/Dockerfile does not install the binary at %s", path)
	}
	args := append(slices.Clone([]string(hc.Test[2:])), "-h")
	var stderr bytes.Buffer
	run := exec.Command(mcpstream(t), args...)
	run.Env, run.Stderr = binaryEnv, &stderr
	if err := run.Run(); err != nil || !strings.Contains(stderr.String(), "Usage of "+hc.Test[2]+":") {
		t.Errorf("%s: health check mcpstream %s: %v\n%s", what, strings.Join(args, " "), err, firstLines(stderr.String(), 3))
	}
}

// secrets are the NATS credentials read from the environment only.
var secrets = []string{"MCPSTREAM_NATS_USER", "MCPSTREAM_NATS_PASSWORD", "MCPSTREAM_NATS_TOKEN"}

// checkCommand checks the mcpstream command args (gateway, worker or
// provision and flags) of what, run with the variables env (each must be
// a flag's of that command in the README's table vars, a NATS secret or
// OTEL_*) and shared (each must be a flag's of some command in vars; the
// command ignores the others): the built binary parses args with every
// variable of the command given as the flag it stands for, and -h.
func checkCommand(t *testing.T, what string, args []string, env, shared map[string]string, vars map[string]configVar) {
	t.Helper()
	if len(args) == 0 || !slices.Contains([]string{"gateway", "worker", "provision"}, args[0]) {
		t.Errorf("%s: command %q is not gateway, worker or provision", what, args)
		return
	}
	cmd := args[0]
	args = slices.Clone(args)
	for k, v := range shared {
		if _, set := env[k]; set {
			continue
		}
		cv, ok := vars[k]
		switch {
		case slices.Contains(secrets, k), strings.HasPrefix(k, "OTEL_"):
		case !ok:
			t.Errorf("%s: %s is no flag's variable in the README's configuration table", what, k)
		case slices.Contains(cv.commands, cmd):
			args = append(args, "--"+cv.flag+"="+v)
		}
	}
	for k, v := range env {
		cv, ok := vars[k]
		switch {
		case slices.Contains(secrets, k), strings.HasPrefix(k, "OTEL_"):
		case !strings.HasPrefix(k, "MCPSTREAM_"):
			t.Errorf("%s: variable %s is neither MCPSTREAM_* nor OTEL_*", what, k)
		case !ok:
			t.Errorf("%s: %s is no flag's variable in the README's configuration table", what, k)
		case !slices.Contains(cv.commands, cmd):
			t.Errorf("%s: %s is the variable of --%s, which %s does not take", what, k, cv.flag, cmd)
		default:
			args = append(args, "--"+cv.flag+"="+v)
		}
	}
	var stderr bytes.Buffer
	run := exec.Command(mcpstream(t), append(args, "-h")...)
	run.Env, run.Stderr = binaryEnv, &stderr
	if err := run.Run(); err != nil || !strings.Contains(stderr.String(), "Usage of "+cmd+":") {
		t.Errorf("%s: mcpstream %s: %v\n%s", what, strings.Join(args, " "), err, firstLines(stderr.String(), 3))
	}
}

// firstLines returns the first n lines of s.
func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// envValue returns the value of variable k of service s, or "".
func envValue(s types.ServiceConfig, k string) string {
	if v, ok := s.Environment[k]; ok && v != nil {
		return *v
	}
	return ""
}

// portOf returns the port of a HOST:PORT address.
func portOf(t *testing.T, what, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %q: %v", what, addr, err)
	}
	return port
}

// TestComposeWiring: the addresses the services are configured with agree
// with each other: the load balancer proxies to the gateway service on the
// port its MCPSTREAM_ADDR listens on; the traces go to the jaeger
// service's OTLP/HTTP port; the NATS URLs name the NATS services; the
// exporters read those services' monitoring ports.
func TestComposeWiring(t *testing.T) {
	p := loadCompose(t)
	gw, w := p.Services["gateway"], p.Services["worker"]
	conf, err := os.ReadFile(filepath.Join(root, "deploy/nginx/mcpstream.conf"))
	if err != nil {
		t.Fatal(err)
	}
	gwPort := portOf(t, "gateway's MCPSTREAM_ADDR", envValue(gw, "MCPSTREAM_ADDR"))
	if !regexp.MustCompile(`(?m)^\s*server gateway:` + gwPort + ` resolve;`).Match(conf) {
		t.Errorf("deploy/nginx/mcpstream.conf does not proxy to gateway:%s (re-resolved)", gwPort)
	}
	for _, want := range []string{"proxy_buffering off;", "proxy_read_timeout 24h;", "resolver 127.0.0.11"} {
		if !bytes.Contains(conf, []byte(want)) {
			t.Errorf("deploy/nginx/mcpstream.conf lacks %q", want)
		}
	}
	lb := p.Services["lb"]
	if len(lb.Ports) != 1 || lb.Ports[0].Target != 8080 || !bytes.Contains(conf, []byte("listen 8080;")) {
		t.Errorf("lb publishes %v; nginx should listen on the published target 8080", lb.Ports)
	}
	for name, s := range map[string]types.ServiceConfig{"gateway": gw, "worker": w} {
		if got := envValue(s, "OTEL_EXPORTER_OTLP_ENDPOINT"); got != "http://jaeger:4318" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT %q, want http://jaeger:4318 (jaeger's OTLP/HTTP)", name, got)
		}
		if got := envValue(s, "OTEL_METRICS_EXPORTER"); got != "none" {
			t.Errorf("%s: OTEL_METRICS_EXPORTER %q: Jaeger takes no metrics, Prometheus scrapes them", name, got)
		}
		for _, u := range strings.Split(envValue(s, "MCPSTREAM_NATS"), ",") {
			host := strings.TrimPrefix(u, "nats://")
			h, port, err := net.SplitHostPort(host)
			if _, ok := p.Services[h]; err != nil || !ok || port != "4222" {
				t.Errorf("%s: NATS URL %q names no NATS service's client port", name, u)
			}
		}
	}
	for i := 1; i <= 3; i++ {
		e := p.Services["nats-exporter-"+string(rune('0'+i))]
		want := "http://nats-" + string(rune('0'+i)) + ":8222"
		if !slices.Contains(e.Command, want) || !slices.Contains(e.Command, "-jsz=all") {
			t.Errorf("nats-exporter-%d: command %q does not read %s with -jsz=all", i, e.Command, want)
		}
	}
	if _, ok := p.Services["jaeger"]; !ok {
		t.Error("no jaeger service")
	}
}
