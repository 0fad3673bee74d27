package report

import (
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
)

// Picture draws scenario's topology as an SVG document, with path (ns/if
// places in order) highlighted and drop ("ns/if", or "ns": where the probe
// was dropped, or where the diagnosis found the cause) marked; both empty
// for the plain topology. The HTML report embeds what it returns;
// an error is shown in the picture's place.
type Picture func(scenario string, path []string, drop string) ([]byte, error)

// HTMLOptions control WriteHTML.
type HTMLOptions struct {
	// Picture draws topologies; nil leaves pictures out.
	Picture Picture
}

// WriteHTML writes r as one self-contained HTML page: no script, no
// stylesheet, font or image fetched from anywhere, so it opens offline
// and from a CI artifact. It holds the summary, and per scenario its
// topology picture and every check with its result; a probe check has its
// path drawn on the picture, its hop timeline with NAT translations, ARP
// and the drop, and a failed one its diagnosis with evidence and fix.
// Failed checks are open; the others fold.
func WriteHTML(w io.Writer, r Run, opts HTMLOptions) error {
	page := htmlPage{Run: r, Summary: summaryLines(r)}
	for _, s := range r.Scenarios {
		hs := htmlScenario{Scenario: s}
		if s.Error != "" {
			hs.Problem = scenarioErrorCheck(s).Name
		}
		if !s.InputError && !s.BuildError {
			hs.Picture = picture(opts, s.Name, nil, "")
		}
		for _, c := range s.Checks {
			hc := htmlCheck{Check: c, Figures: figures(c), Path: checkPath(c)}
			if c.Drop != nil {
				hc.DropText = dropText(*c.Drop)
				hc.DropAt = place(c.Drop.NS, c.Drop.If)
			}
			if c.Diagnosis != nil {
				hc.DiagnosisAt = place(c.Diagnosis.NS, c.Diagnosis.If)
			}
			stop := hc.DropAt
			if stop == "" && !c.Passed {
				// No drop was seen: mark where the diagnosis found the cause.
				stop = hc.DiagnosisAt
			}
			if len(hc.Path) > 0 || stop != "" {
				hc.Picture = picture(opts, s.Name, hc.Path, stop)
			}
			hc.Hops = htmlHops(c.Hops)
			hs.Checks = append(hs.Checks, hc)
		}
		page.Scenarios = append(page.Scenarios, hs)
	}
	if err := htmlTemplate.Execute(w, page); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	return nil
}

type htmlPage struct {
	Run       Run
	Summary   []string
	Scenarios []htmlScenario
}

type htmlScenario struct {
	Scenario
	Problem string // "build", "validate", "teardown", "setup"
	Picture template.HTML
	Checks  []htmlCheck
}

type htmlCheck struct {
	Check
	Figures     string
	Path        []string
	Picture     template.HTML
	Hops        []htmlHop
	DropText    string
	DropAt      string
	DiagnosisAt string
}

type htmlHop struct {
	Hop
	Place string
	Time  string
	// NAT says what changed since the leg's previous hop ("SNAT",
	// "DNAT").
	NAT string
	// FirstReply marks the reply's first hop.
	FirstReply bool
}

// checkPath is where a probe's request went: its request hops' places in
// order, each once in a row.
func checkPath(c Check) []string {
	var out []string
	for _, h := range c.Hops {
		if h.Leg != LegRequest {
			continue
		}
		p := place(h.NS, h.If)
		if len(out) == 0 || out[len(out)-1] != p {
			out = append(out, p)
		}
	}
	return out
}

func htmlHops(hops []Hop) []htmlHop {
	var out []htmlHop
	var prev *Hop
	for i := range hops {
		h := hops[i]
		hh := htmlHop{Hop: h, Place: place(h.NS, h.If), Time: hopTime(h.TUS)}
		if prev != nil && prev.Leg == h.Leg {
			var nat []string
			if addrOnly(prev.Src) != addrOnly(h.Src) {
				nat = append(nat, "SNAT")
			}
			if addrOnly(prev.Dst) != addrOnly(h.Dst) {
				nat = append(nat, "DNAT")
			}
			hh.NAT = strings.Join(nat, "+")
		}
		if h.Leg == LegReply && (prev == nil || prev.Leg != LegReply) {
			hh.FirstReply = true
		}
		out = append(out, hh)
		prev = &hops[i]
	}
	return out
}

// addrOnly strips a port: "10.0.0.2:40000" -> "10.0.0.2", "[fd00::2]:80"
// -> "fd00::2".
func addrOnly(s string) string {
	if strings.HasPrefix(s, "[") {
		if i := strings.Index(s, "]"); i > 0 {
			return s[1:i]
		}
	}
	if strings.Count(s, ":") == 1 {
		s, _, _ = strings.Cut(s, ":")
	}
	return s
}

// picture returns an SVG to embed, or a note saying why there is none.
func picture(opts HTMLOptions, scenario string, path []string, drop string) template.HTML {
	if opts.Picture == nil {
		return ""
	}
	svg, err := opts.Picture(scenario, slices.Clone(path), drop)
	if err != nil {
		return template.HTML(`<p class="note">no picture: ` + template.HTMLEscapeString(err.Error()) + `</p>`)
	}
	return template.HTML(stripProlog(string(svg)))
}

// stripProlog drops what comes before <svg (the XML declaration, doctype
// and comments), which has no place inside HTML.
func stripProlog(svg string) string {
	if i := strings.Index(svg, "<svg"); i >= 0 {
		return svg[i:]
	}
	return ""
}

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"status": func(passed bool) string {
		if passed {
			return "PASS"
		}
		return "FAIL"
	},
	"ms":   formatMS,
	"join": strings.Join,
}).Parse(htmlSource))

const htmlSource = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hopcheck report: {{status .Run.Passed}}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 72rem; padding: 1rem 1.5rem 3rem; color: #1d2330; }
h1 { font-size: 1.5rem; margin: .5rem 0; }
h2 { font-size: 1.2rem; margin: 0; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px; }
pre { white-space: pre-wrap; margin: .3rem 0; }
.badge { display: inline-block; padding: 0 .5rem; border-radius: .3rem; font-weight: 700; color: #fff; font-size: .85rem; }
.badge.PASS { background: #2e7d32; } .badge.FAIL { background: #c62828; }
details.check.FAIL > summary .name { color: #b71c1c; }
.summary { background: #f4f6fa; border-radius: .5rem; padding: .6rem 1rem; }
.summary pre { margin: 0; }
section.scenario { border: 1px solid #d5dbe6; border-radius: .6rem; margin: 1.2rem 0; padding: .8rem 1rem; }
section.scenario > header { display: flex; gap: .6rem; align-items: baseline; flex-wrap: wrap; }
.file, .note { color: #5b6475; }
.topology svg, .path-picture svg { max-width: 100%; height: auto; }
.topology { margin: .6rem 0; overflow-x: auto; }
details.check { border-top: 1px solid #e5e9f0; padding: .35rem 0; }
details.check > summary { cursor: pointer; list-style-position: outside; }
details.check > summary .name { font-weight: 600; }
details.check > summary .figures { color: #5b6475; margin-left: .5rem; }
.body { margin: .4rem 0 .6rem 1.2rem; }
.error { color: #b71c1c; }
table.hops { border-collapse: collapse; margin: .4rem 0; }
table.hops th, table.hops td { text-align: left; padding: .12rem .6rem; border-bottom: 1px solid #eef1f6; }
table.hops th { font-weight: 600; color: #5b6475; }
tr.reply-start td { border-top: 2px solid #9aa5b8; }
td.nat { color: #6a1b9a; font-weight: 700; }
tr.drop td { background: #fde0e0; color: #b71c1c; font-weight: 600; }
.diagnosis { background: #fff6e5; border-left: 4px solid #f0a500; padding: .4rem .8rem; margin: .5rem 0; }
.diagnosis .cause { font-weight: 700; }
.fix code { background: #e8f5e9; padding: .1rem .3rem; border-radius: .2rem; }
ul.evidence { margin: .2rem 0; padding-left: 1.2rem; }
</style>
</head>
<body>
<h1>hopcheck report <span class="badge {{status .Run.Passed}}" id="result">{{status .Run.Passed}}</span></h1>
<div class="summary"><pre>{{join .Summary "\n"}}</pre></div>
{{range .Scenarios}}
<section class="scenario" id="scenario-{{.Name}}">
<header><span class="badge {{status .Passed}}">{{status .Passed}}</span><h2>{{.Name}}</h2><span class="file mono">{{.File}}</span><span class="note">{{ms .DurationMS}}</span></header>
{{with .Description}}<p>{{.}}</p>{{end}}
{{if .Error}}<div class="problem"><strong>{{.Problem}}:</strong><pre class="error">{{.Error}}</pre></div>{{end}}
{{with .Picture}}<div class="topology">{{.}}</div>{{end}}
{{range .Checks}}
<details class="check {{status .Passed}}"{{if not .Passed}} open{{end}}>
<summary><span class="badge {{status .Passed}}">{{status .Passed}}</span> <span class="name">{{.Name}}</span><span class="figures">{{.Figures}}</span></summary>
<div class="body">
{{with .Error}}<pre class="error">{{.}}</pre>{{end}}
{{with .TraceNote}}<p class="note">trace: {{.}}</p>{{end}}
{{if .Path}}<p class="path">path: <span class="mono">{{join .Path " → "}}</span></p>{{end}}
{{with .Picture}}<div class="path-picture">{{.}}</div>{{end}}
{{if .Hops}}
<table class="hops">
<tr><th>leg</th><th>time</th><th>where</th><th>dir</th><th>packet</th><th>NAT</th></tr>
{{range .Hops}}<tr class="{{.Leg}}{{if .FirstReply}} reply-start{{end}}"><td>{{.Leg}}</td><td class="mono">{{.Time}}</td><td class="mono">{{.Place}}</td><td>{{.Dir}}</td><td class="mono">{{.Src}} → {{.Dst}} {{.Proto}}</td><td class="nat">{{.NAT}}</td></tr>
{{end}}{{with .DropText}}<tr class="drop"><td>drop</td><td></td><td class="mono" colspan="4">{{.}}</td></tr>{{end}}
</table>
{{else}}{{with .DropText}}<p class="error">{{.}}</p>{{end}}{{end}}
{{range .Translations}}<p class="mono nat-line">{{.}}</p>{{end}}
{{range .ARP}}<p class="mono note">arp: {{.}}</p>{{end}}
{{with .Diagnosis}}
<div class="diagnosis">
<div class="cause">cause: {{.Cause}}{{if .NS}} at {{.NS}}{{if .If}}/{{.If}}{{end}}{{end}}</div>
<div>{{.Summary}}</div>
{{if .FromStateOnly}}<div class="note">(from namespace state only: the probe was not traced)</div>{{end}}
{{if .Evidence}}<ul class="evidence">{{range .Evidence}}<li class="mono">{{.}}</li>{{end}}</ul>{{end}}
{{with .Fix}}<div class="fix">fix: <code>{{.}}</code></div>{{end}}
</div>
{{end}}
{{if .Details}}<p class="note mono">{{range .Details}}{{.Key}}={{.Value}} {{end}}</p>{{end}}
</div>
</details>
{{end}}
</section>
{{end}}
</body>
</html>
`
