package main

import (
	"runtime/debug"
	"strings"

	"github.com/ates/ates/services/internal/server"
)

// versionString is the version, then the VCS revision and time the binary was built
// from (with "+dirty" for uncommitted changes) and the Go version, as far as known.
func versionString() string {
	info, ok := debug.ReadBuildInfo()
	v := server.Version // the one stamp (-ldflags -X .../server.Version, as make build does); the OpenAPI documents report it too
	if v == "" && ok {
		v = info.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	if !ok {
		return v
	}
	var revision, when string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	extra := []string{}
	if revision != "" {
		if dirty {
			revision += "+dirty"
		}
		extra = append(extra, "revision "+revision)
	}
	if when != "" {
		extra = append(extra, when)
	}
	extra = append(extra, info.GoVersion)
	return v + " (" + strings.Join(extra, ", ") + ")"
}
