package server

import (
	"slices"
	"strings"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// route is one REST binding of a gRPC method, read from its google.api.http option.
type route struct {
	method     string   // HTTP method
	segs       []string // path segments: literals, "*" for one segment, "**" for the rest
	verb       string   // the ":verb" suffix, if any
	fullMethod string   // the gRPC method, "/pkg.Service/Method"
}

// routesOf reads the REST bindings of every service registered on g from the proto
// descriptors, so the HTTP side knows which gRPC method a path calls before the gateway
// reads the body.
func routesOf(g *grpc.Server) []route {
	var routes []route
	for name, info := range g.GetServiceInfo() {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if err != nil || !ok {
			continue
		}
		for _, m := range info.Methods {
			md := sd.Methods().ByName(protoreflect.Name(m.Name))
			if md == nil {
				continue
			}
			rule, _ := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
			full := "/" + name + "/" + m.Name
			for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
				if method, template := ruleBinding(r); method != "" {
					segs, verb := parseTemplate(template)
					routes = append(routes, route{method: method, segs: segs, verb: verb, fullMethod: full})
				}
			}
		}
	}
	return routes
}

func ruleBinding(r *annotations.HttpRule) (method, template string) {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return "GET", p.Get
	case *annotations.HttpRule_Put:
		return "PUT", p.Put
	case *annotations.HttpRule_Post:
		return "POST", p.Post
	case *annotations.HttpRule_Delete:
		return "DELETE", p.Delete
	case *annotations.HttpRule_Patch:
		return "PATCH", p.Patch
	case *annotations.HttpRule_Custom:
		return p.Custom.GetKind(), p.Custom.GetPath()
	}
	return "", ""
}

// parseTemplate turns a path template ("/v1/task/{id}/complete", "/v1/{name=users/*}:get")
// into segments, a variable becoming what it matches.
func parseTemplate(t string) (segs []string, verb string) {
	t = strings.TrimPrefix(t, "/")
	if i := strings.LastIndexByte(t, ':'); i > strings.LastIndexByte(t, '/') && i > strings.LastIndexByte(t, '}') {
		t, verb = t[:i], t[i+1:]
	}
	var b strings.Builder
	for t != "" {
		open := strings.IndexByte(t, '{')
		end := strings.IndexByte(t, '}')
		if open < 0 || end < open {
			b.WriteString(t)
			break
		}
		b.WriteString(t[:open])
		if _, pattern, ok := strings.Cut(t[open+1:end], "="); ok {
			b.WriteString(pattern)
		} else {
			b.WriteString("*")
		}
		t = t[end+1:]
	}
	return strings.Split(b.String(), "/"), verb
}

// matches reports whether path (with its leading slash) fits r's template.
func (r route) matches(path string) bool {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if r.verb != "" {
		last, ok := strings.CutSuffix(parts[len(parts)-1], ":"+r.verb)
		if !ok {
			return false
		}
		parts[len(parts)-1] = last
	}
	for i, seg := range r.segs {
		if seg == "**" {
			return true
		}
		if i >= len(parts) || (seg != "*" && seg != parts[i]) || (seg == "*" && parts[i] == "") {
			return false
		}
	}
	return len(parts) == len(r.segs)
}

// lookup finds the route of a request, and lists the HTTP methods its path allows.
func lookup(routes []route, method, path string) (found route, ok bool, allowed []string) {
	for _, r := range routes {
		if !r.matches(path) {
			continue
		}
		if r.method == method && !ok {
			found, ok = r, true
		}
		if !slices.Contains(allowed, r.method) {
			allowed = append(allowed, r.method)
		}
	}
	slices.Sort(allowed)
	return found, ok, allowed
}
