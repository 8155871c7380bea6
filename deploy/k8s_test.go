package deploy_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/mcpstream/mcpstream/streams"
)

// scaledObject is the part of KEDA's ScaledObject (keda.sh/v1alpha1) the
// manifests use; KEDA's Go module is not a dependency, so the fields are
// written here, and decoding is strict: a field not here is an error.
type scaledObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount int `json:"minReplicaCount"`
		MaxReplicaCount int `json:"maxReplicaCount"`
		PollingInterval int `json:"pollingInterval"`
		CooldownPeriod  int `json:"cooldownPeriod"`
		Triggers        []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// k8sObjects are the decoded objects of a kustomize build.
type k8sObjects struct {
	deployments   map[string]*appsv1.Deployment
	services      map[string]*corev1.Service
	configMaps    map[string]*corev1.ConfigMap
	pdbs          []*policyv1.PodDisruptionBudget
	hpas          []*autoscalingv2.HorizontalPodAutoscaler
	jobs          map[string]*batchv1.Job
	policies      []*networkingv1.NetworkPolicy
	scaledObjects []*scaledObject
	namespaces    map[string]bool // of every object
}

// build runs `kustomize build` of dir in-process (krusty, on disk) and
// decodes every object strictly into its Kubernetes API type (KEDA's
// ScaledObject into scaledObject): an unknown field or kind fails.
func build(t *testing.T, dir string) *k8sObjects {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join(root, dir))
	if err != nil {
		t.Fatal(err)
	}
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	o := &k8sObjects{deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, jobs: map[string]*batchv1.Job{}, namespaces: map[string]bool{}}
	for _, r := range rm.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		decode := func(v any) {
			if err := yaml.UnmarshalStrict(b, v); err != nil {
				t.Errorf("%s: %s %s: %v", dir, r.GetKind(), r.GetName(), err)
			}
		}
		o.namespaces[r.GetNamespace()] = true
		switch r.GetKind() {
		case "Deployment":
			var d appsv1.Deployment
			decode(&d)
			o.deployments[d.Name] = &d
		case "Service":
			var s corev1.Service
			decode(&s)
			o.services[s.Name] = &s
		case "ConfigMap":
			var c corev1.ConfigMap
			decode(&c)
			o.configMaps[c.Name] = &c
		case "PodDisruptionBudget":
			var p policyv1.PodDisruptionBudget
			decode(&p)
			o.pdbs = append(o.pdbs, &p)
		case "HorizontalPodAutoscaler":
			var h autoscalingv2.HorizontalPodAutoscaler
			decode(&h)
			o.hpas = append(o.hpas, &h)
		case "Job":
			var j batchv1.Job
			decode(&j)
			o.jobs[j.Name] = &j
		case "NetworkPolicy":
			var n networkingv1.NetworkPolicy
			decode(&n)
			o.policies = append(o.policies, &n)
		case "ScaledObject":
			var s scaledObject
			decode(&s)
			o.scaledObjects = append(o.scaledObjects, &s)
		default:
			t.Errorf("%s: unexpected kind %s (%s)", dir, r.GetKind(), r.GetName())
		}
	}
	return o
}

// selects reports whether selector (matchLabels) selects a pod labelled
// labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// podOf returns the pod template of the Deployment or Job named name.
func (o *k8sObjects) podOf(name string) *corev1.PodTemplateSpec {
	if d, ok := o.deployments[name]; ok {
		return &d.Spec.Template
	}
	if j, ok := o.jobs[name]; ok {
		return &j.Spec.Template
	}
	return nil
}

// containerPort returns the port of c named or numbered p, or 0.
func containerPort(c corev1.Container, p string) int32 {
	for _, cp := range c.Ports {
		if cp.Name == p || strconv.Itoa(int(cp.ContainerPort)) == p {
			return cp.ContainerPort
		}
	}
	return 0
}

// env is what a container's environment holds: its own variables, and
// those of the ConfigMaps of its envFrom.
func (o *k8sObjects) env(t *testing.T, c corev1.Container) (own, shared map[string]string) {
	t.Helper()
	own, shared = map[string]string{}, map[string]string{}
	for _, e := range c.Env {
		own[e.Name] = e.Value
	}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		cm, ok := o.configMaps[ef.ConfigMapRef.Name]
		if !ok {
			t.Errorf("container %s: envFrom ConfigMap %s does not exist", c.Name, ef.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			shared[k] = v
		}
	}
	return own, shared
}

// TestKustomize: the base and the example overlay build, every object
// decodes into its API type, and the objects agree with each other and
// with the binary: selectors select their pods; Services, probes and
// NetworkPolicies name ports the containers have, on the addresses their
// MCPSTREAM_* variables give; probes ask /readyz and /healthz, which the
// binary serves on those listeners; every container runs as non-root on
// a read-only root filesystem without capabilities; each command parses
// with the binary's flags and its variables; the KEDA triggers read the
// worker group's consumer on every partition stream; the overlay puts
// everything in its namespace, which KEDA's NATS address names.
func TestKustomize(t *testing.T) {
	vars := configVariables(t)
	for _, dir := range []string{"deploy/k8s/base", "deploy/k8s/overlays/example"} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			o := build(t, dir)
			for _, name := range []string{"mcpstream-gateway", "mcpstream-worker"} {
				d, ok := o.deployments[name]
				if !ok {
					t.Fatalf("no Deployment %s", name)
				}
				if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
					t.Errorf("Deployment %s: selector %v does not select its pods %v", name, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
				}
			}
			if _, ok := o.jobs["mcpstream-provision"]; !ok {
				t.Fatal("no Job mcpstream-provision")
			}
			gwPod := o.podOf("mcpstream-gateway")
			checkPods(t, o, vars)
			svc, ok := o.services["mcpstream-gateway"]
			if !ok {
				t.Fatal("no Service mcpstream-gateway")
			}
			if !selects(svc.Spec.Selector, gwPod.Labels) {
				t.Errorf("Service: selector %v does not select the gateways %v", svc.Spec.Selector, gwPod.Labels)
			}
			for _, p := range svc.Spec.Ports {
				if containerPort(gwPod.Spec.Containers[0], p.TargetPort.String()) == 0 {
					t.Errorf("Service: target port %s is no gateway container port", p.TargetPort.String())
				}
			}
			if len(o.pdbs) != 1 || !selects(o.pdbs[0].Spec.Selector.MatchLabels, gwPod.Labels) {
				t.Errorf("no PodDisruptionBudget selecting the gateways")
			}
			if len(o.hpas) != 1 || o.hpas[0].Spec.ScaleTargetRef.Name != "mcpstream-gateway" || o.hpas[0].Spec.ScaleTargetRef.Kind != "Deployment" ||
				len(o.hpas[0].Spec.Metrics) != 1 || o.hpas[0].Spec.Metrics[0].Resource == nil || o.hpas[0].Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
				t.Errorf("no HorizontalPodAutoscaler of the gateway Deployment on CPU")
			}
			checkPolicies(t, o)
			ns := ""
			if dir != "deploy/k8s/base" {
				ns = "mcpstream"
				if len(o.namespaces) != 1 || !o.namespaces[ns] {
					t.Errorf("objects in namespaces %v, want all in %s", o.namespaces, ns)
				}
				img := gwPod.Spec.Containers[0].Image
				if img != "registry.example.com/mcpstream:v0.1.0" {
					t.Errorf("gateway image %s, want the overlay's", img)
				}
				if r := o.deployments["mcpstream-worker"].Spec.Replicas; r == nil || *r != 3 {
					t.Errorf("worker replicas %v, want the overlay's 3", r)
				}
			}
			checkScaledObject(t, o, ns)
		})
	}
}

// checkPods checks every pod template: security, probes, ports and command.
func checkPods(t *testing.T, o *k8sObjects, vars map[string]configVar) {
	t.Helper()
	for _, name := range []string{"mcpstream-gateway", "mcpstream-worker", "mcpstream-provision"} {
		pod := o.podOf(name)
		sc := pod.Spec.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
			t.Errorf("%s: not run as non-root", name)
		}
		for _, c := range pod.Spec.Containers {
			cs := c.SecurityContext
			if cs == nil || cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem || cs.AllowPrivilegeEscalation == nil ||
				*cs.AllowPrivilegeEscalation || cs.Capabilities == nil || !slices.Equal(cs.Capabilities.Drop, []corev1.Capability{"ALL"}) {
				t.Errorf("%s/%s: root filesystem writable, privilege escalation allowed or capabilities kept", name, c.Name)
			}
			own, shared := o.env(t, c)
			checkCommand(t, name, c.Args, own, shared, vars)
			addr := func(k string) string {
				if v, ok := own[k]; ok {
					return v
				}
				return shared[k]
			}
			for _, p := range c.Ports {
				want := map[string]string{"http": "MCPSTREAM_ADDR", "metrics": "MCPSTREAM_METRICS_ADDR"}[p.Name]
				if want == "" || portOf(t, want, addr(want)) != strconv.Itoa(int(p.ContainerPort)) {
					t.Errorf("%s/%s: port %s (%d) is not where %s listens (%q)", name, c.Name, p.Name, p.ContainerPort, want, addr(want))
				}
			}
			if name == "mcpstream-provision" {
				continue
			}
			for kind, pr := range map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
				if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != kind || containerPort(c, pr.HTTPGet.Port.String()) == 0 {
					t.Errorf("%s/%s: no %s probe on a container port", name, c.Name, kind)
				}
			}
		}
	}
}

// TestProbePaths: the paths the manifests probe are served by the binary
// on both listeners a gateway has (its MCP listener and its metrics
// listener), as `mcpstream dev` shows.
func TestProbePaths(t *testing.T) {
	u := startDev(t)
	for _, base := range []string{strings.TrimSuffix(u.mcp, "/mcp"), strings.TrimSuffix(u.metrics, "/metrics")} {
		for _, path := range []string{"/readyz", "/healthz"} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s%s: %s", base, path, resp.Status)
			}
		}
	}
}

// checkPolicies: NATS's client port admits the three mcpstream
// components only, and each component's policy selects its pods.
func checkPolicies(t *testing.T, o *k8sObjects) {
	t.Helper()
	byName := map[string]*networkingv1.NetworkPolicy{}
	for _, p := range o.policies {
		byName[p.Name] = p
	}
	for _, name := range []string{"mcpstream-gateway", "mcpstream-worker", "mcpstream-provision"} {
		p, ok := byName[name]
		pod := o.podOf(name)
		if !ok || !selects(p.Spec.PodSelector.MatchLabels, pod.Labels) {
			t.Errorf("no NetworkPolicy %s selecting its pods", name)
			continue
		}
		for _, rule := range p.Spec.Ingress {
			for _, port := range rule.Ports {
				if port.Port == nil || containerPort(pod.Spec.Containers[0], port.Port.String()) == 0 {
					t.Errorf("NetworkPolicy %s admits port %v, which its pods do not have", name, port.Port)
				}
			}
		}
	}
	nats, ok := byName["nats"]
	if !ok {
		t.Fatal("no NetworkPolicy nats")
	}
	for _, rule := range nats.Spec.Ingress {
		client := false
		for _, p := range rule.Ports {
			client = client || p.Port.IntValue() == 4222
		}
		if !client {
			continue
		}
		for _, peer := range rule.From {
			if peer.PodSelector == nil || peer.NamespaceSelector != nil || peer.PodSelector.MatchLabels["app.kubernetes.io/name"] != "mcpstream" {
				t.Errorf("NATS's client port admits %+v, beyond mcpstream's pods", peer)
			}
		}
	}
}

// checkScaledObject: KEDA scales the worker Deployment on the backlog of
// its group's consumer (streams.ConsumerName of its --examples) on each of
// the provisioned partition streams (MCPSTREAM_PARTITIONS), read from the
// NATS release's monitoring port in namespace ns (when set).
func checkScaledObject(t *testing.T, o *k8sObjects, ns string) {
	t.Helper()
	if len(o.scaledObjects) != 1 {
		t.Fatalf("%d ScaledObjects, want 1", len(o.scaledObjects))
	}
	so := o.scaledObjects[0]
	if so.APIVersion != "keda.sh/v1alpha1" || so.Spec.ScaleTargetRef.Name != "mcpstream-worker" {
		t.Errorf("ScaledObject %s (%s) scales %q", so.Metadata.Name, so.APIVersion, so.Spec.ScaleTargetRef.Name)
	}
	w := o.podOf("mcpstream-worker").Spec.Containers[0]
	group := ""
	if i := slices.Index(w.Args, "--examples"); i >= 0 && i+1 < len(w.Args) {
		group = w.Args[i+1]
	}
	_, shared := o.env(t, w)
	partitions, err := strconv.Atoi(shared["MCPSTREAM_PARTITIONS"])
	if err != nil || group == "" || strings.Contains(group, ",") {
		t.Fatalf("worker: one group (%q) and MCPSTREAM_PARTITIONS (%v) expected", group, err)
	}
	var seen []string
	for _, tr := range so.Spec.Triggers {
		m := tr.Metadata
		if tr.Type != "nats-jetstream" || m["consumer"] != streams.ConsumerName(group) || m["account"] == "" {
			t.Errorf("trigger %s on consumer %q, want nats-jetstream on %s", tr.Type, m["consumer"], streams.ConsumerName(group))
		}
		seen = append(seen, m["stream"])
		host, port, _ := strings.Cut(m["natsServerMonitoringEndpoint"], ":")
		if port != "8222" || !regexp.MustCompile(`^nats-headless\.[a-z0-9-]+\.svc\.cluster\.local$`).MatchString(host) ||
			(ns != "" && !strings.HasPrefix(host, "nats-headless."+ns+".")) {
			t.Errorf("trigger reads %q, not the monitoring port of release nats in namespace %q", m["natsServerMonitoringEndpoint"], ns)
		}
		if n, err := strconv.Atoi(m["lagThreshold"]); err != nil || n <= 0 {
			t.Errorf("trigger lagThreshold %q", m["lagThreshold"])
		}
	}
	var want []string
	for p := range partitions {
		want = append(want, streams.StreamName(p))
	}
	if !slices.Equal(seen, want) {
		t.Errorf("triggers on streams %q, want one on each of %q", seen, want)
	}
}

// TestKEDATriggersExist: the stream and consumer each KEDA trigger of the
// base reads exist on a real `mcpstream dev` provisioned with the
// manifests' partitions and serving their group, and JetStream reports the
// consumer's pending count (num_pending in /jsz, what the scaler reads).
func TestKEDATriggersExist(t *testing.T) {
	o := build(t, "deploy/k8s/base")
	w := o.podOf("mcpstream-worker").Spec.Containers[0]
	_, shared := o.env(t, w)
	i := slices.Index(w.Args, "--examples")
	if i < 0 || i+1 >= len(w.Args) {
		t.Fatalf("worker args %q: no --examples", w.Args)
	}
	u := startDev(t, "--nats-listen", "127.0.0.1:0", "--partitions", shared["MCPSTREAM_PARTITIONS"], "--examples", w.Args[i+1])
	nc, err := nats.Connect(u.nats)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tr := range o.scaledObjects[0].Spec.Triggers {
		c, err := js.Consumer(ctx, tr.Metadata["stream"], tr.Metadata["consumer"])
		if err != nil {
			t.Errorf("trigger on %s / %s: %v", tr.Metadata["stream"], tr.Metadata["consumer"], err)
			continue
		}
		if info := c.CachedInfo(); info.NumPending != 0 || info.Config.Durable != tr.Metadata["consumer"] {
			t.Errorf("%s / %s: pending %d, durable %q", tr.Metadata["stream"], tr.Metadata["consumer"], info.NumPending, info.Config.Durable)
		}
	}
}

// TestNATSValues: the NATS Helm chart's values run 3 clustered nodes with
// JetStream on file storage and a max_payload above the gateways' body
// limit (MCPSTREAM_MAX_BODY in the manifests).
func TestNATSValues(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "deploy/k8s/nats-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Config struct {
			Cluster struct {
				Enabled  bool `json:"enabled"`
				Replicas int  `json:"replicas"`
			} `json:"cluster"`
			JetStream struct {
				Enabled   bool `json:"enabled"`
				FileStore struct {
					Enabled bool `json:"enabled"`
				} `json:"fileStore"`
			} `json:"jetstream"`
			Merge map[string]string `json:"merge"`
		} `json:"config"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 || !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled {
		t.Errorf("NATS values: cluster %+v, JetStream %+v; want 3 clustered nodes, JetStream on files", c.Cluster, c.JetStream)
	}
	m := regexp.MustCompile(`^<< (\d+)MB >>$`).FindStringSubmatch(c.Merge["max_payload"])
	if m == nil {
		t.Fatalf("max_payload %q is not << NMB >>", c.Merge["max_payload"])
	}
	mb, _ := strconv.Atoi(m[1])
	o := build(t, "deploy/k8s/base")
	own, _ := o.env(t, o.podOf("mcpstream-gateway").Spec.Containers[0])
	body, err := strconv.Atoi(own["MCPSTREAM_MAX_BODY"])
	if err != nil {
		t.Fatalf("the gateway's MCPSTREAM_MAX_BODY: %v", err)
	}
	// The envelope around a body adds its headers and fields: a few KB.
	if mb<<20 < body+64<<10 {
		t.Errorf("max_payload %d MB is below the gateway's body limit %d plus an envelope", mb, body)
	}
}
