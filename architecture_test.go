package ates_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const architectureDoc = "docs/ARCHITECTURE.md"

var (
	// codeSpan is an inline code span: `...`.
	codeSpan = regexp.MustCompile("`([^`\n]+)`")
	// repoPath is a code span that names a file or folder of the repository: at least one
	// slash, no placeholder (<name>), not an absolute or URL path.
	repoPath = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/?$`)
	// funcRef is a code span that names a Go function or method: f() or Type.f().
	funcRef = regexp.MustCompile(`^(?:([A-Za-z_][A-Za-z0-9_]*)\.)?([A-Za-z_][A-Za-z0-9_]*)\(\)$`)
	// queryRef is a code span that may name an sqlc query: TaskComplete.
	queryRef = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
	// mermaidNode is a node declared with an id and a shape: id["label"], id[("label")], ...
	mermaidNode = regexp.MustCompile(`^\s*([A-Za-z][A-Za-z0-9_]*)\s*[\[({]`)
)

// architectureText is docs/ARCHITECTURE.md split into its prose (fenced blocks left
// out, so code samples may name files that do not exist) and its mermaid block.
func architectureText(t *testing.T) (prose []string, mermaid []string) {
	t.Helper()
	b, err := os.ReadFile(architectureDoc)
	require.NoError(t, err)
	fence := "" // the info string of the fenced block we are in; "" outside
	inFence := false
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\n")
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			if inFence {
				inFence, fence = false, ""
			} else {
				inFence, fence = true, strings.TrimPrefix(trimmed, "```")
			}
			continue
		}
		switch {
		case !inFence:
			prose = append(prose, line)
		case fence == "mermaid":
			mermaid = append(mermaid, line)
		}
	}
	return prose, mermaid
}

// spans are the inline code spans of line.
func spans(line string) []string {
	var out []string
	for _, m := range codeSpan.FindAllStringSubmatch(line, -1) {
		out = append(out, m[1])
	}
	return out
}

// isRepoPath says whether a code span is meant as a path in the repository.
func isRepoPath(s string) bool {
	return strings.Contains(s, "/") && repoPath.MatchString(s) && !strings.Contains(s, "//")
}

// TestArchitecturePathsExist checks that every repository path the architecture map
// names in backticks exists, so a moved or deleted file fails the build until the map
// follows it.
func TestArchitecturePathsExist(t *testing.T) {
	t.Parallel()
	prose, _ := architectureText(t)
	checked := 0
	for i, line := range prose {
		for _, s := range spans(line) {
			if !isRepoPath(s) {
				continue
			}
			checked++
			_, err := os.Stat(filepath.FromSlash(strings.TrimSuffix(s, "/")))
			require.NoError(t, err, "%s names %q (prose line %d), which does not exist", architectureDoc, s, i+1)
		}
	}
	require.Greater(t, checked, 20, "the map should name the files where the rules live")
}

// TestArchitectureRulesPointAtTheirCode checks each table row of the map that names
// files: every function written as f() or Type.f() must be declared in one of the row's
// Go files (or folders), and every query name must be an sqlc query of one of its SQL
// files. A renamed function fails the build until the map follows it.
func TestArchitectureRulesPointAtTheirCode(t *testing.T) {
	t.Parallel()
	prose, _ := architectureText(t)
	checked := 0
	for _, line := range prose {
		if !strings.HasPrefix(strings.TrimSpace(line), "|") {
			continue
		}
		var goFiles, sqlFiles []string
		for _, s := range spans(line) {
			if !isRepoPath(s) {
				continue
			}
			switch p := strings.TrimSuffix(s, "/"); {
			case strings.HasSuffix(p, ".go"):
				goFiles = append(goFiles, p)
			case strings.HasSuffix(p, ".sql"):
				sqlFiles = append(sqlFiles, p)
			default:
				if fi, err := os.Stat(p); err == nil && fi.IsDir() {
					matches, err := filepath.Glob(filepath.Join(p, "*.go"))
					require.NoError(t, err)
					for _, m := range matches {
						if !strings.HasSuffix(m, "_test.go") {
							goFiles = append(goFiles, m)
						}
					}
				}
			}
		}
		decls := goDecls(t, goFiles)
		queries := sqlQueries(t, sqlFiles)
		for _, s := range spans(line) {
			switch {
			case funcRef.MatchString(s):
				m := funcRef.FindStringSubmatch(s)
				name := m[2]
				if m[1] != "" {
					name = m[1] + "." + m[2]
				}
				require.NotEmpty(t, goFiles, "row names %s but no Go file: %s", s, line)
				require.Contains(t, decls, name, "%s is not declared in %v (row: %s)", s, goFiles, line)
				checked++
			case queryRef.MatchString(s) && len(sqlFiles) > 0:
				require.Contains(t, queries, s, "%s is no sqlc query of %v (row: %s)", s, sqlFiles, line)
				checked++
			}
		}
	}
	require.Greater(t, checked, 30, "the rule table should name the functions and queries that hold the rules")
}

// goDecls are the functions ("f") and methods ("Type.f") declared in files.
func goDecls(t *testing.T, files []string) []string {
	t.Helper()
	var out []string
	fset := token.NewFileSet()
	for _, f := range files {
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			if fn.Recv == nil || len(fn.Recv.List) == 0 {
				out = append(out, fn.Name.Name)
				continue
			}
			out = append(out, receiverName(fn.Recv.List[0].Type)+"."+fn.Name.Name)
		}
	}
	return out
}

// receiverName is the type name of a method's receiver: T of T, *T, T[K] or *T[K].
func receiverName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StarExpr:
		return receiverName(x.X)
	case *ast.IndexExpr:
		return receiverName(x.X)
	case *ast.IndexListExpr:
		return receiverName(x.X)
	case *ast.Ident:
		return x.Name
	}
	return ""
}

// sqlQueries are the sqlc query names (-- name: X :kind) of files.
func sqlQueries(t *testing.T, files []string) []string {
	t.Helper()
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for line := range strings.Lines(string(b)) {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "-- name:"); ok {
				if fields := strings.Fields(rest); len(fields) > 0 {
					out = append(out, fields[0])
				}
			}
		}
	}
	return out
}

// TestArchitectureDiagramShowsEveryService checks that every service the ates binary
// runs is a node of the map's Mermaid diagram. The services are found from the imports
// of services/cmd/ates, so a new service is caught whatever its folder holds.
func TestArchitectureDiagramShowsEveryService(t *testing.T) {
	t.Parallel()
	_, mermaid := architectureText(t)
	require.NotEmpty(t, mermaid, "%s has no ```mermaid block", architectureDoc)
	require.Equal(t, "flowchart LR", strings.TrimSpace(mermaid[0]), "the diagram starts with its type")

	var nodes []string
	for _, line := range mermaid {
		if m := mermaidNode.FindStringSubmatch(line); m != nil && m[1] != "subgraph" {
			nodes = append(nodes, m[1])
		}
	}
	services := binaryServices(t)
	require.GreaterOrEqual(t, len(services), 7, "services/cmd/ates runs the seven services")
	for _, svc := range services {
		require.Contains(t, nodes, svc, "service %s (services/%s) is not a node of the diagram in %s", svc, svc, architectureDoc)
	}
	for _, infra := range []string{"postgres", "exchange", "smtp"} {
		require.Contains(t, nodes, infra)
	}
}

// binaryServices are the service folders under services/ that the ates binary imports
// (the shared packages under services/internal aside), sorted.
func binaryServices(t *testing.T) []string {
	t.Helper()
	const prefix = "github.com/ates/ates/services/"
	files, err := filepath.Glob("services/cmd/ates/*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, imp := range file.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			require.NoError(t, err)
			rest, ok := strings.CutPrefix(path, prefix)
			if !ok || strings.HasPrefix(rest, "internal/") || strings.HasPrefix(rest, "cmd/") {
				continue
			}
			svc, _, _ := strings.Cut(rest, "/")
			if !slices.Contains(out, svc) {
				out = append(out, svc)
			}
		}
	}
	slices.Sort(out)
	return out
}
