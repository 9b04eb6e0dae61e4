package ates_test

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

const k8sDir = "deploy/k8s"

// kustomization is the part of kustomize's Kustomization that deploy/k8s uses; decoded
// strictly like the rest, so a field it does not know fails the test until added here.
type kustomization struct {
	APIVersion      string   `json:"apiVersion"`
	Kind            string   `json:"kind"`
	Resources       []string `json:"resources"`
	SecretGenerator []struct {
		Name string   `json:"name"`
		Envs []string `json:"envs"`
	} `json:"secretGenerator"`
	Images []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// k8sManifests is every object in deploy/k8s, by kind, decoded into the Kubernetes API types.
type k8sManifests struct {
	kustomization kustomization
	files         []string // the manifests beside kustomization.yaml
	deployments   map[string]*appsv1.Deployment
	services      map[string]*corev1.Service
	jobs          map[string]*batchv1.Job
	configMaps    map[string]*corev1.ConfigMap
	pdbs          map[string]*policyv1.PodDisruptionBudget
}

// decodeStrict decodes one YAML document into out, refusing unknown and duplicate fields.
func decodeStrict(doc []byte, out any) error {
	return yaml.UnmarshalStrict(doc, out)
}

// loadK8s reads every YAML document in deploy/k8s and decodes each strictly into the API
// type its apiVersion and kind name.
func loadK8s(t *testing.T) *k8sManifests {
	t.Helper()
	m := &k8sManifests{
		deployments: map[string]*appsv1.Deployment{},
		services:    map[string]*corev1.Service{},
		jobs:        map[string]*batchv1.Job{},
		configMaps:  map[string]*corev1.ConfigMap{},
		pdbs:        map[string]*policyv1.PodDisruptionBudget{},
	}
	raw, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	require.NoError(t, err)
	require.NoError(t, decodeStrict(raw, &m.kustomization), "kustomization.yaml")

	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	require.NoError(t, err)
	for _, path := range files {
		name := filepath.Base(path)
		if name == "kustomization.yaml" {
			continue
		}
		m.files = append(m.files, name)
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
			require.NoError(t, m.add([]byte(doc)), "%s, document %d", name, i+1)
		}
	}
	return m
}

func (m *k8sManifests) add(doc []byte) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return err
	}
	if head.Kind == "" && len(bytes.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAll(doc, nil))) == 0 {
		return nil // only comments
	}
	name := head.Metadata.Name
	var target any
	switch gvk := head.APIVersion + "/" + head.Kind; gvk {
	case "apps/v1/Deployment":
		m.deployments[name] = &appsv1.Deployment{}
		target = m.deployments[name]
	case "v1/Service":
		m.services[name] = &corev1.Service{}
		target = m.services[name]
	case "batch/v1/Job":
		m.jobs[name] = &batchv1.Job{}
		target = m.jobs[name]
	case "v1/ConfigMap":
		m.configMaps[name] = &corev1.ConfigMap{}
		target = m.configMaps[name]
	case "policy/v1/PodDisruptionBudget":
		m.pdbs[name] = &policyv1.PodDisruptionBudget{}
		target = m.pdbs[name]
	default:
		return fmt.Errorf("kind %q (apiVersion %q) is not one the test knows", head.Kind, head.APIVersion)
	}
	if name == "" {
		return fmt.Errorf("a %s without a name", head.Kind)
	}
	return decodeStrict(doc, target)
}

// containerPort is the number of the container port that ref (a name or a number) names.
func containerPort(t *testing.T, c corev1.Container, ref string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == ref || fmt.Sprint(p.ContainerPort) == ref {
			return p.ContainerPort
		}
	}
	require.Failf(t, "no such container port", "container %s has no port %q", c.Name, ref)
	return 0
}

func TestK8sDecodesStrictly(t *testing.T) {
	t.Parallel()

	t.Run("an unknown field is refused", func(t *testing.T) {
		t.Parallel()
		m := loadK8s(t)
		doc := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replica: 2\n"
		require.ErrorContains(t, m.add([]byte(doc)), "unknown field")
	})
	t.Run("a kind the test does not check is refused", func(t *testing.T) {
		t.Parallel()
		m := loadK8s(t)
		require.Error(t, m.add([]byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n")))
	})
}

func TestK8sKustomizationListsEveryFile(t *testing.T) {
	t.Parallel()
	m := loadK8s(t)
	require.Equal(t, "kustomize.config.k8s.io/v1beta1", m.kustomization.APIVersion)
	require.Equal(t, "Kustomization", m.kustomization.Kind)
	require.ElementsMatch(t, m.files, m.kustomization.Resources)
	require.Len(t, m.kustomization.Images, 1)
	require.Equal(t, "ates", m.kustomization.Images[0].Name)
}

func TestK8sAtesServices(t *testing.T) {
	t.Parallel()
	m := loadK8s(t)

	var want []string
	for _, s := range atesServices {
		want = append(want, s.name)
	}
	require.ElementsMatch(t, want, slices.Collect(maps.Keys(m.deployments)), "one Deployment per aTES service")

	for _, s := range atesServices {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			d := m.deployments[s.name]
			require.NotNil(t, d)
			spec := d.Spec.Template.Spec
			require.Len(t, spec.Containers, 1)
			c := spec.Containers[0]

			require.Equal(t, "ates", c.Image, "the image kustomization.yaml pins")
			require.Equal(t, []string{s.name}, c.Args, "the ates subcommand of the service")
			require.Empty(t, c.Command, "the image's entrypoint is /ates")
			require.NotNil(t, d.Spec.Replicas)
			require.GreaterOrEqual(t, *d.Spec.Replicas, int32(2), "a drain or a crash leaves a replica serving")

			// The container ports are the ones the service listens on (docs/product.md).
			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			wantPorts := map[string]int32{"http": int32(s.httpPort)}
			if s.grpcPort != 0 {
				wantPorts["grpc"] = int32(s.grpcPort)
			}
			require.Equal(t, wantPorts, ports)

			// Liveness: the gRPC server answers grpc.health.v1 (APIs), or HTTP /healthz.
			require.NotNil(t, c.LivenessProbe)
			if s.grpcPort != 0 {
				require.NotNil(t, c.LivenessProbe.GRPC, "an API is alive while grpc.health.v1 answers")
				require.Equal(t, int32(s.grpcPort), c.LivenessProbe.GRPC.Port)
				require.Nil(t, c.LivenessProbe.GRPC.Service, "the server's overall status")
			} else {
				require.NotNil(t, c.LivenessProbe.HTTPGet, "liveness is HTTP /healthz")
				require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
				require.Equal(t, int32(s.httpPort), containerPort(t, c, c.LivenessProbe.HTTPGet.Port.String()))
			}

			require.NotNil(t, c.StartupProbe)
			require.NotNil(t, c.StartupProbe.HTTPGet)
			require.Equal(t, "/healthz", c.StartupProbe.HTTPGet.Path)
			require.Equal(t, int32(s.httpPort), containerPort(t, c, c.StartupProbe.HTTPGet.Port.String()))

			// Readiness: /readyz, the only status that follows PostgreSQL, the schema, the
			// broker and auth (the gRPC health status stays SERVING until shutdown).
			require.NotNil(t, c.ReadinessProbe)
			require.NotNil(t, c.ReadinessProbe.HTTPGet, "readiness is HTTP /readyz")
			require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
			require.Equal(t, int32(s.httpPort), containerPort(t, c, c.ReadinessProbe.HTTPGet.Port.String()))

			require.False(t, c.Resources.Requests.Cpu().IsZero(), "a CPU request")
			require.False(t, c.Resources.Requests.Memory().IsZero(), "a memory request")

			requireAtesEnv(t, c)

			// The Service routes to the pods and to the ports they listen on.
			svc := m.services[s.name]
			require.NotNil(t, svc, "a Service for %s", s.name)
			require.Equal(t, d.Spec.Template.Labels, svc.Spec.Selector)
			var svcPorts []int32
			for _, p := range svc.Spec.Ports {
				require.Equal(t, p.Port, containerPort(t, c, p.TargetPort.String()), "Service port %s", p.Name)
				svcPorts = append(svcPorts, p.Port)
			}
			require.ElementsMatch(t, slices.Collect(maps.Values(wantPorts)), svcPorts)

			// The selector picks the Deployment's pods.
			require.NotNil(t, d.Spec.Selector)
			for k, v := range d.Spec.Selector.MatchLabels {
				require.Equal(t, v, d.Spec.Template.Labels[k])
			}
		})
	}
}

// requireAtesEnv checks that c gets the settings from the ConfigMap and the Secret.
func requireAtesEnv(t *testing.T, c corev1.Container) {
	t.Helper()
	var configMaps, secrets []string
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef != nil {
			configMaps = append(configMaps, from.ConfigMapRef.Name)
		}
		if from.SecretRef != nil {
			secrets = append(secrets, from.SecretRef.Name)
		}
	}
	require.Equal(t, []string{"ates-config"}, configMaps, c.Name)
	require.Equal(t, []string{"ates-secrets"}, secrets, c.Name)
}

func TestK8sDisruptionBudgets(t *testing.T) {
	t.Parallel()
	m := loadK8s(t)
	for _, s := range atesServices {
		t.Run(s.name+" has a PodDisruptionBudget selecting its pods", func(t *testing.T) {
			t.Parallel()
			pdb := m.pdbs[s.name]
			require.NotNil(t, pdb)
			require.NotNil(t, pdb.Spec.Selector)
			require.NotEmpty(t, pdb.Spec.Selector.MatchLabels)
			labels := m.deployments[s.name].Spec.Template.Labels
			for k, v := range pdb.Spec.Selector.MatchLabels {
				require.Equal(t, v, labels[k], "label %s", k)
			}
			require.True(t, pdb.Spec.MaxUnavailable != nil || pdb.Spec.MinAvailable != nil)
		})
	}
	for name, pdb := range m.pdbs {
		require.Contains(t, m.deployments, name, "PodDisruptionBudget %s has no Deployment", pdb.Name)
	}
}

func TestK8sJobs(t *testing.T) {
	t.Parallel()
	m := loadK8s(t)
	tests := []struct {
		name string
		args []string
	}{
		{name: "migrate", args: []string{"migrate"}},
		{name: "broker-setup", args: []string{"broker", "setup", "--management"}},
	}
	require.Len(t, m.jobs, len(tests))
	for _, tt := range tests {
		t.Run(tt.name+" runs ates "+strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			job := m.jobs[tt.name]
			require.NotNil(t, job)
			spec := job.Spec.Template.Spec
			require.Equal(t, corev1.RestartPolicyOnFailure, spec.RestartPolicy)
			if tt.name == "migrate" {
				require.NotNil(t, job.Spec.Parallelism)
				require.Equal(t, int32(1), *job.Spec.Parallelism, "the migrations take no lock: one pod at a time")
			}
			require.Len(t, spec.Containers, 1)
			c := spec.Containers[0]
			require.Equal(t, "ates", c.Image)
			require.GreaterOrEqual(t, len(c.Args), len(tt.args))
			require.Equal(t, tt.args, c.Args[:len(tt.args)])
			require.False(t, c.Resources.Requests.Cpu().IsZero(), "a CPU request")
			requireAtesEnv(t, c)
		})
	}
}

// TestK8sSettings: the Secret comes from a gitignored secrets.env whose example names
// every secret setting; the ConfigMap holds no secret and points the APIs at auth's Service.
func TestK8sSettings(t *testing.T) {
	t.Parallel()
	m := loadK8s(t)

	require.Len(t, m.kustomization.SecretGenerator, 1)
	gen := m.kustomization.SecretGenerator[0]
	require.Equal(t, "ates-secrets", gen.Name)
	require.Equal(t, []string{"secrets.env"}, gen.Envs)

	ignore, err := os.ReadFile(".gitignore")
	require.NoError(t, err)
	require.Contains(t, strings.Split(string(ignore), "\n"), "/"+k8sDir+"/secrets.env", "secrets.env is never committed")

	example := readEnvFile(t, filepath.Join(k8sDir, "secrets.env.example"))
	secret := []string{
		"ATES_DATABASE_URL", "ATES_AMQP_URL",
		"ATES_TASKS_AMQP_URL", "ATES_TASKHANDLER_AMQP_URL", "ATES_DAILYACCOUNTING_AMQP_URL", "ATES_MAILSENDER_AMQP_URL",
		"ATES_AUTH_HMAC_KEY", "ATES_TASKS_EVENT_KEYS", "ATES_DAILYACCOUNTING_EVENT_KEYS",
		"ATES_SMTP_USERNAME", "ATES_SMTP_PASSWORD",
	}
	require.ElementsMatch(t, secret, slices.Collect(maps.Keys(example)))
	for name, value := range example {
		require.Contains(t, value, "REPLACE_ME", "%s in the example is a placeholder", name)
	}

	cm := m.configMaps["ates-config"]
	require.NotNil(t, cm)
	require.Len(t, m.configMaps, 1)
	for name := range cm.Data {
		require.True(t, strings.HasPrefix(name, "ATES_"), name)
		require.NotContains(t, secret, name, "%s is a secret: it belongs in secrets.env", name)
		require.NotContains(t, name, "ALLOW_DEV_KEYS")
	}
	auth := m.services["auth"]
	require.NotNil(t, auth)
	var grpcPort int32
	for _, p := range auth.Spec.Ports {
		if p.Name == "grpc" {
			grpcPort = p.Port
		}
	}
	require.Equal(t, fmt.Sprintf("%s:%d", auth.Name, grpcPort), cm.Data["ATES_AUTH_ADDR"])

	// The web dashboard reaches each REST API through its Service's http port.
	for _, name := range []string{"auth", "tasks", "accounting", "analytics"} {
		svc := m.services[name]
		require.NotNil(t, svc, name)
		var httpPort int32
		for _, p := range svc.Spec.Ports {
			if p.Name == "http" {
				httpPort = p.Port
			}
		}
		require.Equal(t, fmt.Sprintf("http://%s:%d", svc.Name, httpPort), cm.Data["ATES_WEB_"+strings.ToUpper(name)+"_URL"], name)
	}
}

// readEnvFile reads NAME=value lines, skipping blanks and comments.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		require.True(t, ok, "%s: %q is not NAME=value", path, line)
		require.NotContains(t, env, name, "%s: %s twice", path, name)
		env[name] = value
	}
	require.NoError(t, sc.Err())
	return env
}
