package ates_test

import (
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// observabilityServices are the services of compose.yaml's `observability` profile.
var observabilityServices = []string{"otel-collector", "jaeger", "prometheus", "grafana"}

// loadObservability loads compose.yaml with the `observability` profile active.
func loadObservability(t *testing.T) *types.Project {
	t.Helper()
	return loadComposeWith(t, withTestKeys(nil), cli.WithProfiles([]string{"observability"}))
}

// readYAML decodes a file of the repository into v (unknown fields are ignored: v holds
// only what the tests check).
func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, v), path)
}

// mountOf is the bind mount of svc whose container path is target.
func mountOf(t *testing.T, svc types.ServiceConfig, target string) types.ServiceVolumeConfig {
	t.Helper()
	for _, v := range svc.Volumes {
		if v.Target == target {
			require.Equal(t, types.VolumeTypeBind, v.Type, "%s mounts %s", svc.Name, target)
			return v
		}
	}
	require.Failf(t, "no mount", "%s mounts nothing at %s", svc.Name, target)
	return types.ServiceVolumeConfig{}
}

// requireRepoFile: the absolute path compose resolved a mount source to is the
// repository file or directory rel.
func requireRepoFile(t *testing.T, source, rel string) {
	t.Helper()
	want, err := filepath.Abs(rel)
	require.NoError(t, err)
	require.Equal(t, want, source)
}

// publishes reports whether svc exposes container port port (published or not, the
// other containers reach it by service name).
func publishes(svc types.ServiceConfig, port string) bool {
	for _, p := range svc.Ports {
		if strconv.FormatUint(uint64(p.Target), 10) == port {
			return true
		}
	}
	return slices.Contains(svc.Expose, port)
}

func TestComposeObservabilityProfile(t *testing.T) {
	t.Parallel()

	t.Run("a plain up starts none of it", func(t *testing.T) {
		t.Parallel()
		names := loadCompose(t).ServiceNames()
		for _, name := range observabilityServices {
			require.NotContains(t, names, name)
		}
	})

	t.Run("the profile adds it to every other service", func(t *testing.T) {
		t.Parallel()
		project := loadObservability(t)
		want := append(loadCompose(t).ServiceNames(), observabilityServices...)
		require.ElementsMatch(t, want, project.ServiceNames())
		for _, name := range observabilityServices {
			svc, err := project.GetService(name)
			require.NoError(t, err)
			require.Equal(t, []string{"observability"}, svc.Profiles, name)
		}
	})

	t.Run("the services send traces only where OTEL_EXPORTER_OTLP_ENDPOINT says", func(t *testing.T) {
		t.Parallel()
		off := loadCompose(t)
		on := loadComposeWith(t, withTestKeys([]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4317"}))
		for _, s := range atesServices {
			svc, err := off.GetService(s.name)
			require.NoError(t, err)
			require.Empty(t, *svc.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"], "%s exports no traces by default", s.name)
			svc, err = on.GetService(s.name)
			require.NoError(t, err)
			require.Equal(t, "http://otel-collector:4317", *svc.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"], s.name)
		}
	})
}

// fullVersion is an exact release tag: three numbers (an optional leading v and a
// variant suffix such as -management allowed), optionally with a digest.
var fullVersion = regexp.MustCompile(`^[a-z0-9./-]+:v?\d+\.\d+\.\d+(-[a-z0-9.]+)?(@sha256:[0-9a-f]{64})?$`)

// twoNumberReleases are the images whose exact releases have two numbers.
var twoNumberReleases = map[string]*regexp.Regexp{
	"postgres": regexp.MustCompile(`^postgres:\d+\.\d+(@sha256:[0-9a-f]{64})?$`), // 16.10 is a patch release
}

func TestComposeImagesArePinned(t *testing.T) {
	t.Parallel()
	project := loadComposeWith(t, withTestKeys(nil), cli.WithProfiles([]string{"*"}))
	require.Subset(t, project.ServiceNames(), observabilityServices, "every profile is loaded")

	for _, svc := range project.Services {
		if svc.Build != nil {
			require.Equal(t, "ates:local", svc.Image, "%s builds this repository", svc.Name)
			continue
		}
		pinned := fullVersion
		if re, ok := twoNumberReleases[svc.Name]; ok {
			pinned = re
		}
		require.Regexp(t, pinned, svc.Image, "%s runs an image of a floating tag", svc.Name)
	}
}

func TestComposeBindMountsExist(t *testing.T) {
	t.Parallel()
	project := loadComposeWith(t, withTestKeys(nil), cli.WithProfiles([]string{"*"}))
	binds := 0
	for _, svc := range project.Services {
		for _, v := range svc.Volumes {
			switch v.Type {
			case types.VolumeTypeBind:
				_, err := os.Stat(v.Source)
				require.NoError(t, err, "%s mounts %s", svc.Name, v.Source)
				require.True(t, v.ReadOnly, "%s may write into the repository's %s", svc.Name, v.Source)
				binds++
			case types.VolumeTypeVolume:
				require.Contains(t, project.Volumes, v.Source, "%s's volume is declared", svc.Name)
			}
		}
	}
	require.NotZero(t, binds)
}

// TestComposePrometheusScrapesEveryService: deploy/prometheus/prometheus.yml, mounted
// where Prometheus reads it, scrapes each aTES service's HTTP port (the one its
// health check reads in compose.yaml) and the collector's own metrics.
func TestComposePrometheusScrapesEveryService(t *testing.T) {
	t.Parallel()
	project := loadObservability(t)
	prom, err := project.GetService("prometheus")
	require.NoError(t, err)
	requireRepoFile(t, mountOf(t, prom, "/etc/prometheus/prometheus.yml").Source, "deploy/prometheus/prometheus.yml")

	var config struct {
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			MetricsPath   string `json:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	readYAML(t, "deploy/prometheus/prometheus.yml", &config)
	var targets []string
	for _, sc := range config.ScrapeConfigs {
		require.Contains(t, []string{"", "/metrics"}, sc.MetricsPath, "job %s", sc.JobName)
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}

	scraped := 0
	for _, svc := range project.Services {
		if svc.Build == nil || svc.HealthCheck == nil {
			continue // not a long-running aTES service
		}
		ready, err := url.Parse(svc.HealthCheck.Test[len(svc.HealthCheck.Test)-1])
		require.NoError(t, err, svc.Name)
		require.True(t, publishes(svc, ready.Port()), "%s's HTTP port %s", svc.Name, ready.Port())
		require.Contains(t, targets, net.JoinHostPort(svc.Name, ready.Port()), "Prometheus does not scrape %s", svc.Name)
		scraped++
	}
	require.Equal(t, len(atesServices), scraped)

	var collector collectorConfig
	readYAML(t, "deploy/otel-collector/config.yaml", &collector)
	require.NotEmpty(t, collector.Service.Telemetry.Metrics.Readers)
	exporter := collector.Service.Telemetry.Metrics.Readers[0].Pull.Exporter.Prometheus
	require.Equal(t, "0.0.0.0", exporter.Host, "the collector serves its metrics beyond its loopback")
	require.Contains(t, targets, net.JoinHostPort("otel-collector", exporter.Port.String()))
}

// collectorConfig is what the tests read of deploy/otel-collector/config.yaml.
type collectorConfig struct {
	Receivers struct {
		OTLP struct {
			Protocols struct {
				GRPC struct{ Endpoint string } `json:"grpc"`
				HTTP struct{ Endpoint string } `json:"http"`
			} `json:"protocols"`
		} `json:"otlp"`
	} `json:"receivers"`
	Exporters map[string]struct {
		Endpoint string `json:"endpoint"`
	} `json:"exporters"`
	Service struct {
		Pipelines map[string]struct {
			Receivers []string `json:"receivers"`
			Exporters []string `json:"exporters"`
		} `json:"pipelines"`
		Telemetry struct {
			Metrics struct {
				Readers []struct {
					Pull struct {
						Exporter struct {
							Prometheus struct {
								Host string      `json:"host"`
								Port json.Number `json:"port"`
							} `json:"prometheus"`
						} `json:"exporter"`
					} `json:"pull"`
				} `json:"readers"`
			} `json:"metrics"`
		} `json:"telemetry"`
	} `json:"service"`
}

// TestComposeCollectorExportsToJaeger: the collector reads deploy/otel-collector/config.yaml,
// takes OTLP on the ports it publishes and sends every trace to the jaeger service.
func TestComposeCollectorExportsToJaeger(t *testing.T) {
	t.Parallel()
	project := loadObservability(t)
	svc, err := project.GetService("otel-collector")
	require.NoError(t, err)
	require.Equal(t, types.ShellCommand{"--config=/etc/otelcol-contrib/config.yaml"}, svc.Command)
	requireRepoFile(t, mountOf(t, svc, "/etc/otelcol-contrib/config.yaml").Source, "deploy/otel-collector/config.yaml")

	var config collectorConfig
	readYAML(t, "deploy/otel-collector/config.yaml", &config)
	protocols := config.Receivers.OTLP.Protocols
	require.Equal(t, "0.0.0.0:4317", protocols.GRPC.Endpoint, "OTLP gRPC, beyond the container's loopback")
	require.Equal(t, "0.0.0.0:4318", protocols.HTTP.Endpoint, "OTLP HTTP, beyond the container's loopback")
	require.True(t, publishes(svc, "4317") && publishes(svc, "4318"))

	traces, ok := config.Service.Pipelines["traces"]
	require.True(t, ok, "the collector has a traces pipeline")
	require.Contains(t, traces.Receivers, "otlp")
	require.NotEmpty(t, traces.Exporters)
	jaeger, err := project.GetService("jaeger")
	require.NoError(t, err)
	for _, name := range traces.Exporters {
		exporter, ok := config.Exporters[name]
		require.True(t, ok, "exporter %s is defined", name)
		require.Equal(t, "otlp", strings.SplitN(name, "/", 2)[0], "traces leave as OTLP")
		host, port, err := net.SplitHostPort(exporter.Endpoint)
		require.NoError(t, err)
		require.Equal(t, "jaeger", host, "exporter %s sends traces to the jaeger service", name)
		require.Equal(t, "4317", port, "Jaeger's OTLP gRPC port")
	}
	require.Equal(t, "0.0.0.0", *jaeger.Environment["JAEGER_LISTEN_HOST"], "Jaeger takes OTLP from other containers")
	require.Contains(t, svc.DependsOn, "jaeger")
}

// TestComposeGrafanaProvisioning: Grafana reads deploy/grafana/provisioning, whose data
// sources name the Prometheus and Jaeger services at ports they serve, and whose
// dashboard provider loads the folder deploy/grafana/ates.json is mounted into.
func TestComposeGrafanaProvisioning(t *testing.T) {
	t.Parallel()
	project := loadObservability(t)
	grafana, err := project.GetService("grafana")
	require.NoError(t, err)
	requireRepoFile(t, mountOf(t, grafana, "/etc/grafana/provisioning").Source, "deploy/grafana/provisioning")

	var sources struct {
		Datasources []struct {
			Name, Type, URL string
			IsDefault       bool `json:"isDefault"`
		} `json:"datasources"`
	}
	readYAML(t, "deploy/grafana/provisioning/datasources/ates.yaml", &sources)
	// The UI ports the two services serve their query APIs on.
	servicePort := map[string]string{"prometheus": "9090", "jaeger": "16686"}
	var kinds []string
	for _, ds := range sources.Datasources {
		u, err := url.Parse(ds.URL)
		require.NoError(t, err, ds.Name)
		require.Equal(t, ds.Type, u.Hostname(), "data source %s names the %s service", ds.Name, ds.Type)
		require.Equal(t, servicePort[ds.Type], u.Port(), "data source %s", ds.Name)
		svc, err := project.GetService(u.Hostname())
		require.NoError(t, err)
		require.True(t, publishes(svc, u.Port()), "%s serves port %s", svc.Name, u.Port())
		require.Contains(t, grafana.DependsOn, svc.Name)
		require.Equal(t, ds.Type == "prometheus", ds.IsDefault, "the dashboard's default data source is Prometheus")
		kinds = append(kinds, ds.Type)
	}
	require.ElementsMatch(t, []string{"prometheus", "jaeger"}, kinds)

	var dashboards struct {
		Providers []struct {
			Name    string
			Type    string
			Options struct{ Path string }
		} `json:"providers"`
	}
	readYAML(t, "deploy/grafana/provisioning/dashboards/ates.yaml", &dashboards)
	require.Len(t, dashboards.Providers, 1)
	provider := dashboards.Providers[0]
	require.Equal(t, "file", provider.Type)
	dashboard := mountOf(t, grafana, filepath.Join(provider.Options.Path, "ates.json"))
	requireRepoFile(t, dashboard.Source, "deploy/grafana/ates.json")
}
