package scenario

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hopcheck/hopcheck/internal/safefile"
	"gopkg.in/yaml.v3"
)

// MaxFileSize is the largest scenario file hopcheck reads. The largest in
// the library is a few KiB; a thousand namespaces fit in well under 1 MiB.
const MaxFileSize = 4 << 20

// topKeys are the keys of a scenario file's top-level mapping.
var topKeys = []string{"name", "description", "namespaces", "links", "checks"}

// Parse parses and validates one scenario. file names the source in error
// positions and becomes Scenario.File. On failure the error is an ErrorList
// holding every problem found (at most 20), in file order.
func Parse(file string, data []byte) (*Scenario, error) {
	root, errs := decodeDocument(file, data)
	if errs != nil {
		return nil, errs
	}
	p := &parser{file: file}
	s := p.scenario(root)
	if len(p.errs) > 0 {
		return nil, sortErrors(p.errs)
	}
	return s, nil
}

// ParseFile reads and parses the scenario file at path.
func ParseFile(path string) (*Scenario, error) {
	return ParseFileContext(context.Background(), path)
}

// ParseFileContext reads and parses the scenario file at path. Only a
// regular file (symbolic links followed) of at most MaxFileSize bytes is
// read: a device, a FIFO or a socket is refused without being read (a FIFO
// without being opened for a blocking read), and the read stops when ctx
// is done.
func ParseFileContext(ctx context.Context, path string) (*Scenario, error) {
	data, err := safefile.Read(ctx, path, safefile.ReadOptions{MaxSize: MaxFileSize})
	if err != nil {
		return nil, ErrorList{readError(path, err)}
	}
	return Parse(path, data)
}

// Load parses every scenario named by paths: files, and directories searched
// recursively for .yaml and .yml files (in lexical order, skipping hidden
// directories). A file named twice is read once. Scenario names must be
// unique across everything loaded, because reports and run-specific kernel
// names are keyed by them. On any problem Load returns no scenarios and an
// ErrorList of every problem in every file.
func Load(paths ...string) ([]*Scenario, error) {
	return LoadContext(context.Background(), paths...)
}

// LoadContext is Load that stops reading when ctx is done (SIGINT, SIGTERM).
func LoadContext(ctx context.Context, paths ...string) ([]*Scenario, error) {
	var out []*Scenario
	var errs ErrorList
	for _, f := range LoadEach(ctx, paths...) {
		if f.Err != nil {
			errs = append(errs, f.Err...)
			continue
		}
		out = append(out, f.Scenario)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// Loaded is one file (or a path that could not be read) as LoadEach found
// it: its scenario, or the problems that kept it from being one.
type Loaded struct {
	// File is the path as named or found in a directory.
	File string
	// Scenario is nil when Err is not.
	Scenario *Scenario
	// Err is every problem with the file (or the path), in file order.
	Err ErrorList
}

// LoadEach is Load file by file: it returns every scenario file named by
// paths, in Load's order, each with its scenario or its problems, so that a
// caller can go on with the valid files and report the invalid ones (CI
// reports that survive one bad file). A path that cannot be read and a
// directory without scenarios are entries too; a second scenario with a
// name already used is an invalid entry, and the first one stays valid.
func LoadEach(ctx context.Context, paths ...string) []Loaded {
	files, errs := scenarioFiles(paths)
	var out []Loaded
	for _, e := range errs {
		out = append(out, Loaded{File: e.Pos.File, Err: ErrorList{e}})
	}
	byName := map[string]*Scenario{}
	for _, f := range files {
		if ctx.Err() != nil {
			out = append(out, Loaded{File: f, Err: ErrorList{readError(f, context.Cause(ctx))}})
			break
		}
		s, err := ParseFileContext(ctx, f)
		if err != nil {
			var l ErrorList
			if !errors.As(err, &l) {
				l = ErrorList{{Pos: Pos{File: f}, Msg: err.Error()}}
			}
			out = append(out, Loaded{File: f, Err: l})
			continue
		}
		if first, dup := byName[s.Name]; dup {
			out = append(out, Loaded{File: f, Err: ErrorList{{
				Pos:   s.namePos,
				Field: "name",
				Msg:   fmt.Sprintf("scenario name %q is already used by %s", s.Name, first.namePos),
			}}})
			continue
		}
		byName[s.Name] = s
		out = append(out, Loaded{File: f, Scenario: s})
	}
	return out
}

// scenarioFiles expands paths into the scenario files to read, in order.
func scenarioFiles(paths []string) ([]string, ErrorList) {
	var files []string
	var errs ErrorList
	seen := map[string]bool{}
	add := func(f string) {
		if key := filepath.Clean(f); !seen[key] {
			seen[key] = true
			files = append(files, f)
		}
	}
	for _, path := range paths {
		info, err := os.Stat(path)
		if err != nil {
			errs = append(errs, readError(path, err))
			continue
		}
		if !info.IsDir() {
			add(path)
			continue
		}
		var found []string
		err = filepath.WalkDir(path, func(f string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if f != path && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if ext := filepath.Ext(f); ext == ".yaml" || ext == ".yml" {
				found = append(found, f)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, readError(path, err))
			continue
		}
		if len(found) == 0 {
			errs = append(errs, &Error{Pos: Pos{File: path}, Msg: "the directory holds no .yaml or .yml files"})
			continue
		}
		sort.Strings(found)
		for _, f := range found {
			add(f)
		}
	}
	return files, errs
}

// readError reports a file that cannot be read as a problem with the input:
// the user named it.
func readError(path string, err error) *Error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	msg := "cannot read: " + err.Error()
	if errors.Is(err, safefile.ErrNotRegular) {
		msg += "; a scenario must be a regular file"
	}
	return &Error{Pos: Pos{File: path}, Msg: msg}
}

// scenario walks the top-level mapping. Parts are read in dependency order
// (namespaces, then links, then what refers to interfaces, then checks)
// whatever order the file has them in; errors are sorted into file order at
// the end.
func (p *parser) scenario(root *yaml.Node) *Scenario {
	s := &Scenario{File: p.file}
	top, ok := p.pairs(root, "", topKeys)
	if !ok {
		return s
	}
	byKey := map[string]pair{}
	for _, kv := range top {
		byKey[kv.key] = kv
	}

	if kv, ok := byKey["name"]; !ok {
		p.errorf(root, "", "missing key \"name\" (the scenario's name, [a-z0-9][a-z0-9-]*)")
	} else if name, ok := p.str(kv.v, "name"); ok {
		s.namePos = p.pos(kv.v)
		if msg := checkScenarioName(name); msg != "" {
			p.errorf(kv.v, "name", "%s", msg)
		}
		s.Name = name
	}
	if kv, ok := byKey["description"]; ok {
		if d, ok := p.str(kv.v, "description"); ok {
			s.Description = strings.TrimSpace(d)
		}
	}

	t := &topo{s: s, declared: map[Endpoint]*ifaceSource{}, linkEnds: map[Endpoint]Pos{}}
	if kv, ok := byKey["namespaces"]; !ok {
		p.errorf(root, "", "missing key \"namespaces\" (the network namespaces of the scenario)")
	} else {
		p.namespaces(t, kv)
	}
	if kv, ok := byKey["links"]; ok {
		p.links(t, kv.v)
	}
	p.resolveInterfaces(t)
	for _, ns := range t.namespaces {
		p.checkNamespaceRefs(ns)
	}
	if kv, ok := byKey["checks"]; ok {
		p.checks(t, kv.v)
	}
	return s
}
