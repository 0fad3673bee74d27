package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxErrors is how many problems one file reports before giving up: enough
// to fix a file in one go, few enough to read.
const maxErrors = 20

// maxNodes bounds the YAML nodes one Parse visits, aliases included. Without
// it a small file whose lists and mappings alias each other could make the
// walk take time that grows with the product of their sizes.
const maxNodes = 200_000

// YAML tags of the scalars the format uses.
const (
	tagNull  = "!!null"
	tagBool  = "!!bool"
	tagInt   = "!!int"
	tagFloat = "!!float"
	tagStr   = "!!str"
	tagMerge = "!!merge"
)

// parser holds what one Parse call learns: the file name for positions, and
// every problem found so far.
type parser struct {
	file  string
	errs  ErrorList
	nodes int
	// tooBig is set once maxNodes is exceeded; the walk then stops early.
	tooBig bool
}

func (p *parser) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: p.file}
	}
	return Pos{File: p.file, Line: n.Line, Col: n.Column}
}

// errorf records a problem with the node n, which the field path names.
func (p *parser) errorf(n *yaml.Node, field, format string, args ...any) {
	p.errs = append(p.errs, &Error{Pos: p.pos(n), Field: field, Msg: fmt.Sprintf(format, args...)})
}

// errorAt records a problem at a position kept in the model.
func (p *parser) errorAt(pos Pos, field, format string, args ...any) {
	p.errs = append(p.errs, &Error{Pos: pos, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// visit counts n against maxNodes and follows it if it is an alias, so that
// callers see the anchored node. It returns nil once the budget is spent.
func (p *parser) visit(n *yaml.Node) *yaml.Node {
	if p.tooBig {
		return nil
	}
	p.nodes++
	if p.nodes > maxNodes {
		p.tooBig = true
		p.errorf(n, "", "the scenario is too large (more than %d YAML nodes once aliases are expanded)", maxNodes)
		return nil
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// describe names the kind of a node for "expected X, found Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == tagNull {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

// isNull reports whether n is an empty value (`key:` or `key: null`).
func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == tagNull }

// pair is one key/value of a mapping, with the key's text.
type pair struct {
	key  string
	k, v *yaml.Node
}

// pairs returns the entries of the mapping n in file order. It reports
// duplicate keys, and keys not in known unless known is nil (mappings keyed
// by the author's names: namespaces, interfaces, sysctls). Merge keys (<<)
// are expanded in place; keys written in the mapping itself override merged
// ones, as the YAML merge-key convention says. A null value is an empty
// mapping. ok is false when n is not a mapping at all.
func (p *parser) pairs(n *yaml.Node, field string, known []string) (out []pair, ok bool) {
	if n = p.visit(n); n == nil {
		return nil, false
	}
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, field, "expected a mapping, found %s", describe(n))
		return nil, false
	}
	explicit := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind == yaml.ScalarNode && k.Tag != tagMerge {
			if first, dup := explicit[k.Value]; dup {
				p.errorf(k, field, "duplicate key %q (first at line %d:%d)", k.Value, first.Line, first.Column)
				continue
			}
			explicit[k.Value] = k
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Kind == yaml.ScalarNode && k.Tag == tagMerge:
			out = append(out, p.merged(v, field, known, explicit, seen, 0)...)
		case k.Kind != yaml.ScalarNode || isNull(k):
			p.errorf(k, field, "a key must be a plain name, found %s", describe(k))
		case explicit[k.Value] != k:
			// A duplicate, reported above.
		case known != nil && !contains(known, k.Value):
			p.errorf(k, field, "unknown key %q%s", k.Value, didYouMean(k.Value, known))
		default:
			seen[k.Value] = true
			out = append(out, pair{key: k.Value, k: k, v: v})
		}
	}
	return out, true
}

// maxMergeDepth bounds nested merge keys; a deeper chain is almost surely an
// anchor that merges itself.
const maxMergeDepth = 8

// merged returns the entries that the merge key value v brings into a
// mapping, skipping keys written there explicitly or merged already.
func (p *parser) merged(v *yaml.Node, field string, known []string, explicit map[string]*yaml.Node, seen map[string]bool, depth int) []pair {
	if v = p.visit(v); v == nil {
		return nil
	}
	if depth > maxMergeDepth {
		p.errorf(v, field, "merge keys (<<) nest deeper than %d levels", maxMergeDepth)
		return nil
	}
	var sources []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		sources = []*yaml.Node{v}
	case yaml.SequenceNode:
		for _, s := range v.Content {
			if s = p.visit(s); s == nil {
				return nil
			}
			sources = append(sources, s)
		}
	default:
		// A scalar or null would merge nothing; YAML processors that
		// follow the merge-key spec refuse it, and silently ignoring it
		// would hide a mistake.
		p.errorf(v, field, "a merge key (<<) takes a mapping or a list of mappings, found %s", describe(v))
		return nil
	}
	var out []pair
	for _, s := range sources {
		if s.Kind != yaml.MappingNode {
			p.errorf(s, field, "a merge key (<<) takes a mapping or a list of mappings, found %s", describe(s))
			continue
		}
		for i := 0; i+1 < len(s.Content); i += 2 {
			k, val := s.Content[i], s.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Tag == tagMerge {
				out = append(out, p.merged(val, field, known, explicit, seen, depth+1)...)
				continue
			}
			if k.Kind != yaml.ScalarNode || isNull(k) || explicit[k.Value] != nil || seen[k.Value] {
				continue
			}
			if known != nil && !contains(known, k.Value) {
				p.errorf(k, field, "unknown key %q%s", k.Value, didYouMean(k.Value, known))
				continue
			}
			seen[k.Value] = true
			out = append(out, pair{key: k.Value, k: k, v: val})
		}
	}
	return out
}

// items returns the elements of the list n, aliases followed. A null value
// is an empty list.
func (p *parser) items(n *yaml.Node, field string) (out []*yaml.Node, ok bool) {
	if n = p.visit(n); n == nil {
		return nil, false
	}
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, field, "expected a list, found %s", describe(n))
		return nil, false
	}
	for _, it := range n.Content {
		if it = p.visit(it); it == nil {
			return out, false
		}
		out = append(out, it)
	}
	return out, true
}

// str returns the text of the scalar n. Numbers are taken as written, so
// `to: 10` and `name: 1` work; booleans and null are refused because a
// string field never means them.
func (p *parser) str(n *yaml.Node, field string) (string, bool) {
	if n = p.visit(n); n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || n.Tag == tagNull || n.Tag == tagBool {
		p.errorf(n, field, "expected a string, found %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// boolean returns the value of a YAML boolean (true or false).
func (p *parser) boolean(n *yaml.Node, field string) (bool, bool) {
	if n = p.visit(n); n == nil {
		return false, false
	}
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != tagBool || n.Decode(&b) != nil {
		p.errorf(n, field, "expected true or false, found %s", describe(n))
		return false, false
	}
	return b, true
}

// integer returns the value of a YAML integer within [lo, hi].
func (p *parser) integer(n *yaml.Node, field string, lo, hi int64) (int64, bool) {
	if n = p.visit(n); n == nil {
		return 0, false
	}
	var i int64
	if n.Kind != yaml.ScalarNode || n.Tag != tagInt || n.Decode(&i) != nil {
		p.errorf(n, field, "expected an integer, found %s", describe(n))
		return 0, false
	}
	if i < lo || i > hi {
		p.errorf(n, field, "%d is out of range [%d, %d]", i, lo, hi)
		return 0, false
	}
	return i, true
}

// scalarValue returns a sysctl-style value: the decimal form of an integer,
// the text of a string. Booleans are refused because the kernel wants 0 or 1.
func (p *parser) scalarValue(n *yaml.Node, field string) (string, bool) {
	if n = p.visit(n); n == nil {
		return "", false
	}
	switch {
	case n.Kind != yaml.ScalarNode || n.Tag == tagNull:
		p.errorf(n, field, "expected a value (a number or a string), found %s", describe(n))
		return "", false
	case n.Tag == tagBool:
		p.errorf(n, field, "expected a number or a string, found the boolean %s (write 1 or 0)", n.Value)
		return "", false
	case n.Tag == tagInt:
		var i int64
		if err := n.Decode(&i); err != nil {
			p.errorf(n, field, "integer %s does not fit in 64 bits", n.Value)
			return "", false
		}
		return strconv.FormatInt(i, 10), true
	}
	return n.Value, true
}

// sortErrors puts errs in file order and caps them at maxErrors, with a last
// line saying that more were left out.
func sortErrors(errs ErrorList) ErrorList {
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i].Pos, errs[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	if len(errs) > maxErrors {
		file := errs[0].Pos.File
		errs = append(errs[:maxErrors:maxErrors], &Error{
			Pos: Pos{File: file},
			Msg: fmt.Sprintf("too many errors; the first %d are shown", maxErrors),
		})
	}
	return errs
}

// yamlLineRE finds the line number in a yaml.v3 error message.
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// decodeDocument reads the one YAML document of a scenario file. yaml.v3
// reports syntax errors with the line of the construct that was open (often
// an earlier line) and sometimes without a line at all, so the line given is
// the first one at which the file, cut after it, fails with the same
// message: where a reader sees the problem.
func decodeDocument(file string, data []byte) (root *yaml.Node, errs ErrorList) {
	doc, err := decodeFirst(data)
	if err != nil {
		msg := strings.TrimPrefix(yamlLineRE.ReplaceAllString(err.Error(), ""), "yaml: ")
		line := syntaxErrorLine(data, err)
		if line == 0 {
			if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
				line, _ = strconv.Atoi(m[1])
			}
		}
		if line == 0 {
			line = 1
		}
		return nil, ErrorList{{Pos: Pos{File: file, Line: line}, Msg: "YAML syntax: " + msg}}
	}
	if doc == nil {
		return nil, ErrorList{{Pos: Pos{File: file}, Msg: "the file holds no YAML document"}}
	}
	if line, col, found := secondDocument(data); found {
		if line == 0 {
			line = 1
		}
		return nil, ErrorList{{Pos: Pos{File: file, Line: line, Col: col},
			Msg: "a scenario file holds one YAML document; a second one starts here (remove the \"---\" separator)"}}
	}
	if len(doc.Content) == 0 {
		return nil, ErrorList{{Pos: Pos{File: file}, Msg: "the file holds no YAML document"}}
	}
	// An empty document ("---" alone) has a null root whose position
	// yaml.v3 puts after the end of the input; say what is wrong instead.
	if root := doc.Content[0]; isNull(root) && root.Value == "" {
		return nil, ErrorList{{Pos: Pos{File: file}, Msg: "the YAML document is empty"}}
	}
	return doc.Content[0], nil
}

// decodeFirst decodes the first document of data into a node tree. yaml.v3
// is unmaintained; a panic inside it on hostile input becomes an error here
// rather than taking the whole run down.
func decodeFirst(data []byte) (doc *yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, fmt.Errorf("yaml: the YAML parser failed on this input (%v)", r)
		}
	}()
	var n yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&n); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	return &n, nil
}

// secondDocument reports whether data holds a second YAML document, and the
// line where it starts (0 when the parser cannot say).
func secondDocument(data []byte) (line, col int, found bool) {
	defer func() {
		if recover() != nil {
			line, col, found = 0, 0, true
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var first, second yaml.Node
	if dec.Decode(&first) != nil {
		return 0, 0, false
	}
	err := dec.Decode(&second)
	switch {
	case err == nil:
		return second.Line, second.Column, true
	case errors.Is(err, io.EOF):
		return 0, 0, false
	}
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	return line, 0, true
}

// maxSyntaxSearchBytes bounds the bytes re-parsed while looking for a
// syntax error's line, so that a large broken file costs little; past it
// the line yaml.v3 gave is used.
const maxSyntaxSearchBytes = 1 << 20

// syntaxErrorLine returns the first line n such that data cut after line n
// fails to decode with the same message as err, or 0. The search starts at
// the line yaml.v3 reported, which is never after the real one.
func syntaxErrorLine(data []byte, err error) int {
	want := yamlLineRE.ReplaceAllString(err.Error(), "yaml: ")
	start := 1
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		start, _ = strconv.Atoi(m[1])
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	end, budget := 0, maxSyntaxSearchBytes
	for i, l := range lines {
		end += len(l)
		if i+1 < start {
			continue
		}
		if budget -= end; budget < 0 {
			return 0
		}
		_, perr := decodeFirst(data[:end])
		if perr != nil && yamlLineRE.ReplaceAllString(perr.Error(), "yaml: ") == want {
			return i + 1
		}
	}
	return 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
