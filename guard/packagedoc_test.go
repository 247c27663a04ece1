package guard

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestRepository_EveryPackageHasDoc fails when a package directory of the
// module lacks a doc.go whose package comment starts with "Package <name>"
// ("Command <dir>" is also accepted for a main package). The check lives
// here because guard is the package every other package depends on.
func TestRepository_EveryPackageHasDoc(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}

	dirs, err := packageDirs(root)
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	if len(dirs) == 0 {
		t.Fatal("no package directories found")
	}
	for _, dir := range dirs {
		rel, _ := filepath.Rel(root, dir)
		t.Run(rel, func(t *testing.T) {
			if problem := checkPackageDoc(dir); problem != "" {
				t.Error(problem)
			}
		})
	}
}

// packageDirs returns every directory under root that holds .go files,
// skipping testdata and hidden or underscore-prefixed directories, which
// the go tool ignores too.
func packageDirs(root string) ([]string, error) {
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "vendor" ||
				strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, ".go") {
			seen[filepath.Dir(path)] = true
		}
		return nil
	})

	dirs := make([]string, 0, len(seen))
	for dir := range seen {
		dirs = append(dirs, dir)
	}
	sort.Strings(dirs)
	return dirs, err
}

// checkPackageDoc returns a description of what is wrong with the doc.go
// of dir, or "" when it is fine.
func checkPackageDoc(dir string) string {
	path := filepath.Join(dir, "doc.go")
	file, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
	if err != nil {
		return "missing or unreadable doc.go: " + err.Error()
	}

	name := file.Name.Name
	if file.Doc == nil {
		return "doc.go has no package comment; start it with \"// Package " + name + " ...\""
	}
	text := file.Doc.Text()
	prefixes := []string{"Package " + name + " "}
	if name == "main" {
		prefixes = append(prefixes, "Command "+filepath.Base(dir)+" ")
	}
	for _, prefix := range prefixes {
		if strings.HasPrefix(text, prefix) {
			return ""
		}
	}
	return "doc.go package comment starts " + firstLine(text) + "; want " + strings.Join(prefixes, "or ")
}

func firstLine(text string) string {
	line, _, _ := strings.Cut(text, "\n")
	return "\"" + line + "\""
}
