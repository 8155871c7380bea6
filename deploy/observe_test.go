package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/config"
	_ "github.com/prometheus/prometheus/discovery/dns" // dns_sd_configs
	"github.com/prometheus/prometheus/promql/parser"
)

// TestPrometheusConfig: deploy/prometheus/prometheus.yml is valid for
// Prometheus' own loader, and scrapes every replica of the compose file's
// gateway and worker services through Docker's DNS (type A, on the service
// name) on the port of their MCPSTREAM_METRICS_ADDR, and each NATS
// exporter on the port its command serves.
func TestPrometheusConfig(t *testing.T) {
	cfg, err := config.LoadFile(filepath.Join(root, "deploy/prometheus/prometheus.yml"), false, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Prometheus' loader refuses deploy/prometheus/prometheus.yml: %v", err)
	}
	p := loadCompose(t)
	jobs := map[string]*config.ScrapeConfig{}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = sc
	}
	for _, svc := range []string{"gateway", "worker"} {
		sc, ok := jobs[svc]
		if !ok {
			t.Errorf("no scrape job %s", svc)
			continue
		}
		port := portOf(t, svc+"'s MCPSTREAM_METRICS_ADDR", envValue(p.Services[svc], "MCPSTREAM_METRICS_ADDR"))
		found := false
		for _, d := range sc.ServiceDiscoveryConfigs {
			// The config's own YAML says what the discoverer was given.
			b, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			var dns struct {
				Names []string `json:"names"`
				Type  string   `json:"type"`
				Port  int      `json:"port"`
			}
			if d.Name() != "dns" || json.Unmarshal(b, &dns) != nil {
				continue
			}
			if slices.Equal(dns.Names, []string{svc}) && dns.Type == "A" && fmt.Sprint(dns.Port) == port {
				found = true
			}
		}
		if !found || sc.MetricsPath != "/metrics" {
			t.Errorf("job %s: no DNS discovery of %s (type A, port %s) on /metrics", svc, svc, port)
		}
	}
	sc, ok := jobs["nats"]
	if !ok {
		t.Fatal("no scrape job nats")
	}
	var targets []string
	for _, d := range sc.ServiceDiscoveryConfigs {
		groups, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`nats-exporter-\d:\d+`).FindAll(groups, -1) {
			targets = append(targets, string(m))
		}
	}
	for name, s := range p.Services {
		if !strings.HasPrefix(name, "nats-exporter-") {
			continue
		}
		i := slices.Index(s.Command, "-port")
		if i < 0 || i+1 >= len(s.Command) || !slices.Contains(targets, name+":"+s.Command[i+1]) {
			t.Errorf("%s (command %q) is not a target of job nats (%q)", name, s.Command, targets)
		}
	}
}

// natsExporterMetrics are the metrics of prometheus-nats-exporter the
// dashboard may name (-varz: gnatsd_varz_*, -jsz=all: jetstream_*). They
// cannot be scraped here without the exporter; these are the names its
// README and source list.
var natsExporterMetrics = []string{
	"gnatsd_varz_connections", "gnatsd_varz_in_msgs", "gnatsd_varz_out_msgs", "gnatsd_varz_mem", "gnatsd_varz_cpu",
	"jetstream_consumer_num_pending", "jetstream_consumer_num_ack_pending", "jetstream_consumer_num_redelivered",
	"jetstream_consumer_num_waiting", "jetstream_consumer_delivered_consumer_seq", "jetstream_consumer_delivered_stream_seq",
	"jetstream_stream_total_messages", "jetstream_stream_total_bytes", "jetstream_stream_last_seq", "jetstream_stream_consumer_count",
}

// grafanaVariables are the Grafana variables the dashboard's queries may
// hold, with a value that makes them PromQL.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s", "$__range", "1h")

// dashboard is the part of a Grafana dashboard these tests read.
type dashboard struct {
	UID    string  `json:"uid"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Title      string `json:"title"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// selector is a metric a query selects, with the labels it matches on or
// groups it by (in the innermost aggregation above it).
type selector struct {
	query, metric string
	labels        []string
}

// dashboardSelectors parses every query of the dashboard with Prometheus'
// PromQL parser and returns what they select. The panels' datasource must
// be the provisioned Prometheus.
func dashboardSelectors(t *testing.T) []selector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "deploy/grafana/dashboards/mcpstream.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("deploy/grafana/dashboards/mcpstream.json: %v", err)
	}
	ds, err := os.ReadFile(filepath.Join(root, "deploy/grafana/provisioning/datasources/datasources.yml"))
	if err != nil {
		t.Fatal(err)
	}
	p := parser.NewParser(parser.Options{})
	var out []selector
	for _, pn := range d.Panels {
		if !regexp.MustCompile(`(?m)^\s*uid: ` + regexp.QuoteMeta(pn.Datasource.UID) + `\s*$`).Match(ds) {
			t.Errorf("panel %q: datasource %q is not provisioned", pn.Title, pn.Datasource.UID)
		}
		if len(pn.Targets) == 0 {
			t.Errorf("panel %q has no query", pn.Title)
		}
		for _, q := range pn.Targets {
			expr, err := p.ParseExpr(grafanaVariables.Replace(q.Expr))
			if err != nil {
				t.Errorf("panel %q: %q: %v", pn.Title, q.Expr, err)
				continue
			}
			parser.Inspect(expr, func(n parser.Node, path []parser.Node) error {
				vs, ok := n.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				s := selector{query: q.Expr, metric: vs.Name}
				for _, m := range vs.LabelMatchers {
					if m.Name != "__name__" {
						s.labels = append(s.labels, m.Name)
					}
				}
				for i := len(path) - 1; i >= 0; i-- {
					if agg, ok := path[i].(*parser.AggregateExpr); ok {
						if !agg.Without {
							s.labels = append(s.labels, agg.Grouping...)
						}
						break
					}
				}
				out = append(out, s)
				return nil
			})
		}
	}
	if len(out) < 10 {
		t.Fatalf("%d selectors in the dashboard", len(out))
	}
	return out
}

// TestDashboardMetrics: every query of the Grafana dashboard parses, and
// every metric it names is exported: those of mcpstream (and the Go and
// process collectors) by a real `mcpstream dev` that served a few calls,
// with the labels the queries match on; the NATS exporter's are among its
// known names.
func TestDashboardMetrics(t *testing.T) {
	sels := dashboardSelectors(t)
	scraped := scrapeDev(t)
	for _, s := range sels {
		if strings.HasPrefix(s.metric, "gnatsd_") || strings.HasPrefix(s.metric, "jetstream_") {
			if !slices.Contains(natsExporterMetrics, s.metric) {
				t.Errorf("%s (in %q) is not a prometheus-nats-exporter metric", s.metric, s.query)
			}
			continue
		}
		labels, ok := scraped[s.metric]
		if !ok {
			t.Errorf("%s (in %q) is not exported by mcpstream dev", s.metric, s.query)
			continue
		}
		for _, l := range s.labels {
			if l == "job" || l == "instance" { // added by Prometheus
				continue
			}
			if !labels[l] {
				t.Errorf("%s (in %q) has no label %s", s.metric, s.query, l)
			}
		}
	}
}

// devURLs are the endpoints of a running `mcpstream dev`.
type devURLs struct {
	mcp, metrics string // http://HOST:PORT/mcp, http://HOST:PORT/metrics
	nats         string // nats://HOST:PORT with --nats-listen
}

// startDev runs `mcpstream dev` with its metrics endpoint and extra
// flags until the test ends, and returns its MCP endpoint and metrics URL
// (and NATS URL, with --nats-listen in extra).
func startDev(t *testing.T, extra ...string) devURLs {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	args := append([]string{"dev", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--log-level", "error"}, extra...)
	cmd := exec.CommandContext(ctx, mcpstream(t), args...)
	cmd.Env = binaryEnv
	cmd.Dir = t.TempDir()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		cancel()
	})
	var u devURLs
	wantNATS := slices.Contains(extra, "--nats-listen")
	sc := bufio.NewScanner(stdout)
	for (u.mcp == "" || u.metrics == "" || (wantNATS && u.nats == "")) && sc.Scan() {
		line := sc.Text()
		if m := regexp.MustCompile(`NATS listening on (nats://\S+)`).FindStringSubmatch(line); m != nil {
			u.nats = m[1]
		}
		if m := regexp.MustCompile(`MCP endpoint (http://\S+)`).FindStringSubmatch(line); m != nil {
			u.mcp = m[1]
		}
		if m := regexp.MustCompile(`metrics (http://\S+/metrics)`).FindStringSubmatch(line); m != nil {
			u.metrics = m[1]
		}
	}
	if u.mcp == "" || u.metrics == "" {
		t.Fatalf("mcpstream dev printed no MCP endpoint or metrics URL (%v)", sc.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return u
}

// scrapeDev runs `mcpstream dev` with its metrics endpoint, makes a few
// calls through its MCP endpoint (a session: initialize, then tools/call
// of echo and add), scrapes /metrics, and returns each sample's metric
// name with the labels seen on it.
func scrapeDev(t *testing.T) map[string]map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u := startDev(t)
	mcpURL, metricsURL := u.mcp, u.metrics
	sid := ""
	post := func(body string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, mcpURL, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 || strings.Contains(string(b), `"error"`) {
			t.Fatalf("%s: %s %s", body, resp.Status, b)
		}
		if id := resp.Header.Get("Mcp-Session-Id"); id != "" {
			sid = id
		}
	}
	post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"deploycheck","version":"1"}}}`)
	post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	post(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`)
	post(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":3}}}`)
	post(`{"jsonrpc":"2.0","id":4,"method":"tools/list"}`)

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return sampleLabels(t, resp.Body)
}

// sampleRE matches a sample line of the Prometheus text format: the
// metric name and its labels.
var sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s`)

// labelRE matches a label name in a sample's labels.
var labelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)

// sampleLabels reads a scrape in the text format: each sample's name
// (histograms' _bucket, _sum and _count included) and its label names.
func sampleLabels(t *testing.T, r io.Reader) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := sampleRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if out[m[1]] == nil {
			out[m[1]] = map[string]bool{}
		}
		for _, l := range labelRE.FindAllStringSubmatch(m[2], -1) {
			out[m[1]][l[1]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 20 {
		t.Fatalf("%d metrics scraped", len(out))
	}
	return out
}
