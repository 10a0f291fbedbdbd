package msl

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// addressSpaces are MSL's address-space words.
var addressSpaces = map[string]bool{
	"device": true, "constant": true, "threadgroup": true, "thread": true,
	"threadgroup_imageblock": true, "ray_data": true, "object_data": true,
}

// builtins maps each supported thread attribute to the emu_ids expression that supplies it
// and whether it is a 3-component value (converted to the declared type by emu_bi).
var builtins = map[string]struct {
	expr   string
	vector bool
}{
	"thread_position_in_grid":        {"id->tpig", true},
	"thread_position_in_threadgroup": {"id->tptg", true},
	"threadgroup_position_in_grid":   {"id->tgpig", true},
	"threads_per_threadgroup":        {"id->ttpg", true},
	"threadgroups_per_grid":          {"id->tgpg", true},
	"threads_per_grid":               {"id->tpg", true},
	"thread_index_in_threadgroup":    {"id->tiitg", false},
	"thread_index_in_simdgroup":      {"id->tiisg", false},
	"simdgroup_index_in_threadgroup": {"id->sgitg", false},
	"threads_per_simdgroup":          {"id->tpsg", false},
	"thread_execution_width":         {"id->tpsg", false},
	"simdgroups_per_threadgroup":     {"((id->ttpg.x * id->ttpg.y * id->ttpg.z + 31) / 32)", false},
}

// isBlockingName reports whether a call can park a thread: barriers and simd-group functions.
func isBlockingName(s string) bool {
	return s == "threadgroup_barrier" || s == "simdgroup_barrier" ||
		strings.HasPrefix(s, "simd_") || strings.HasPrefix(s, "quad_")
}

// Func is a function (or function-like macro) defined in a source file.
type Func struct {
	Name     string
	Line     int
	Kernel   bool
	Macro    bool
	Start    int // code index where the declaration starts
	NameAt   int // code index of the name
	LParen   int // code indices of the parameter list's parentheses
	RParen   int
	LBrace   int // code indices of the body's braces (-1 for a macro)
	RBrace   int
	Calls    []string // names called (ident followed by "(" or by a template argument list and "(")
	Idents   map[string]bool
	Template bool
}

// Param is one parameter of a function.
type Param struct {
	Line  int
	Type  []string // type tokens, attribute excluded
	Name  string
	Attr  string // text inside [[ ]], "" when none
	Space string // address space word, "" when none
	Ptr   bool   // declared with *
	Ref   bool   // declared with &
}

// File is one analysed source.
type File struct {
	Name  string // path as it appears in #line directives and messages
	Toks  []Token
	Code  []int // indices into Toks of code tokens (not space, comment or preprocessor)
	Funcs []*Func
	byNm  map[string][]*Func
}

// Error is a located problem in a source file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Errors is a list of located problems, reported one per line.
type Errors []Error

func (es Errors) Error() string {
	var sb strings.Builder
	for i, e := range es {
		if i > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(e.Error())
	}
	return sb.String()
}

func (f *File) tok(ci int) Token { return f.Toks[f.Code[ci]] }
func (f *File) text(ci int) string {
	if ci < 0 || ci >= len(f.Code) {
		return ""
	}
	return f.Toks[f.Code[ci]].Text
}

// Parse lexes and analyses one file.
func Parse(name, src string) (*File, error) {
	toks, err := Lex(name, src)
	if err != nil {
		return nil, err
	}
	f := &File{Name: name, Toks: toks, byNm: map[string][]*Func{}}
	for i, t := range toks {
		if t.Kind != Space && t.Kind != Comment && t.Kind != Preproc {
			f.Code = append(f.Code, i)
		}
	}
	if err := f.findFuncs(); err != nil {
		return nil, err
	}
	f.findMacros()
	for _, fn := range f.Funcs {
		f.byNm[fn.Name] = append(f.byNm[fn.Name], fn)
	}
	return f, nil
}

// match returns the code index of the bracket closing the one at ci.
func (f *File) match(ci int) int {
	open := f.text(ci)
	closeBr := map[string]string{"(": ")", "[": "]", "{": "}"}[open]
	depth := 0
	for j := ci; j < len(f.Code); j++ {
		switch f.text(j) {
		case open:
			depth++
		case closeBr:
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

// findFuncs finds every function definition outside function bodies: NAME ( … ) [const] { … }.
func (f *File) findFuncs() error {
	start := 0 // code index where the current top-level declaration begins
	for ci := 0; ci < len(f.Code); ci++ {
		t := f.text(ci)
		switch t {
		case ";", "}":
			start = ci + 1
			continue
		case "{":
			// namespace or struct body: declarations inside start after the brace
			start = ci + 1
			continue
		case "[":
			if f.text(ci+1) == "[" { // attribute: skip it whole
				if e := f.match(ci); e > 0 {
					ci = e
				}
			}
			continue
		}
		if f.tok(ci).Kind != Ident || f.text(ci+1) != "(" {
			continue
		}
		rp := f.match(ci + 1)
		if rp < 0 {
			return Error{f.Name, f.tok(ci).Line, "unbalanced parentheses after " + t}
		}
		lb := rp + 1
		for f.text(lb) == "const" {
			lb++
		}
		if f.text(lb) != "{" {
			ci = rp
			continue
		}
		rb := f.match(lb)
		if rb < 0 {
			return Error{f.Name, f.tok(ci).Line, "unbalanced braces in " + t}
		}
		fn := &Func{Name: t, Line: f.tok(ci).Line, Start: start, NameAt: ci, LParen: ci + 1, RParen: rp, LBrace: lb, RBrace: rb}
		for j := start; j < ci; j++ {
			switch f.text(j) {
			case "kernel":
				fn.Kernel = true
			case "template":
				fn.Template = true
			}
		}
		fn.Idents, fn.Calls = f.refs(lb+1, rb)
		f.Funcs = append(f.Funcs, fn)
		ci = rb
		start = rb + 1
	}
	return nil
}

// refs collects the identifiers and the called names in code range [a, b).
func (f *File) refs(a, b int) (map[string]bool, []string) {
	ids := map[string]bool{}
	var calls []string
	for j := a; j < b; j++ {
		if f.tok(j).Kind != Ident {
			continue
		}
		name := f.text(j)
		ids[name] = true
		if f.text(j+1) == "(" {
			calls = append(calls, name)
		} else if f.text(j+1) == "<" {
			// name<…>( : a call of a template function
			depth := 0
			for k := j + 1; k < b; k++ {
				s := f.text(k)
				if s == "<" {
					depth++
				} else if s == ">" {
					depth--
					if depth == 0 {
						if f.text(k+1) == "(" {
							calls = append(calls, name)
						}
						break
					}
				} else if s == ">>" {
					depth -= 2
					if depth <= 0 {
						if f.text(k+1) == "(" {
							calls = append(calls, name)
						}
						break
					}
				} else if s == ";" || s == "{" || s == "}" {
					break
				}
			}
		}
	}
	return ids, calls
}

var defineRe = regexp.MustCompile(`^#\s*define\s+([A-Za-z_][A-Za-z_0-9]*)`)

// findMacros records each #define as a pseudo-function whose body's names count as calls,
// so a macro that hides a barrier still marks its users as blocking.
func (f *File) findMacros() {
	for _, t := range f.Toks {
		if t.Kind != Preproc {
			continue
		}
		m := defineRe.FindStringSubmatch(t.Text)
		if m == nil {
			continue
		}
		body := t.Text[len(m[0]):]
		toks, err := Lex(f.Name, body)
		if err != nil {
			continue
		}
		fn := &Func{Name: m[1], Line: t.Line, Macro: true, LBrace: -1, RBrace: -1, Idents: map[string]bool{}}
		for _, bt := range toks {
			if bt.Kind == Ident {
				fn.Idents[bt.Text] = true
				fn.Calls = append(fn.Calls, bt.Text)
			}
		}
		f.Funcs = append(f.Funcs, fn)
	}
}

// Blocking reports whether fn can reach a barrier or a simd-group function, directly or
// through helpers and macros of the same file.
func (f *File) Blocking(fn *Func) bool {
	seen := map[*Func]bool{}
	var walk func(*Func) bool
	walk = func(g *Func) bool {
		if seen[g] {
			return false
		}
		seen[g] = true
		for id := range g.Idents {
			if isBlockingName(id) {
				return true
			}
			for _, h := range f.byNm[id] {
				if walk(h) {
					return true
				}
			}
		}
		return false
	}
	return walk(fn)
}

// Params splits a function's parameter list.
func (f *File) Params(fn *Func) ([]Param, error) {
	var out []Param
	if fn.RParen == fn.LParen+1 || (fn.RParen == fn.LParen+2 && f.text(fn.LParen+1) == "void") {
		return nil, nil
	}
	depth := 0
	begin := fn.LParen + 1
	for j := fn.LParen + 1; j <= fn.RParen; j++ {
		s := f.text(j)
		switch s {
		case "(", "[", "<":
			depth++
		case ")", "]", ">":
			depth--
		}
		if (s == "," && depth == 0) || j == fn.RParen {
			p, err := f.param(begin, j)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
			begin = j + 1
		}
	}
	return out, nil
}

func (f *File) param(a, b int) (Param, error) {
	p := Param{}
	if a >= b {
		return p, Error{f.Name, f.tok(a).Line, "empty parameter"}
	}
	p.Line = f.tok(a).Line
	var toks []string
	for j := a; j < b; j++ {
		s := f.text(j)
		if s == "[" && f.text(j+1) == "[" {
			e := f.match(j)
			var parts []string
			for k := j + 2; k < e-1; k++ {
				parts = append(parts, f.text(k))
			}
			p.Attr = strings.Join(parts, "")
			j = e
			continue
		}
		toks = append(toks, s)
	}
	if len(toks) < 2 || f.kindOf(toks[len(toks)-1]) != Ident {
		return p, Error{f.Name, p.Line, "cannot read parameter " + strconv.Quote(strings.Join(toks, " "))}
	}
	p.Name = toks[len(toks)-1]
	for _, s := range toks[:len(toks)-1] {
		switch {
		case addressSpaces[s]:
			p.Space = s
		case s == "*":
			p.Ptr = true
			p.Type = append(p.Type, s)
		case s == "&":
			p.Ref = true
		default:
			p.Type = append(p.Type, s)
		}
	}
	return p, nil
}

func (f *File) kindOf(s string) Kind {
	if s != "" && isIdentStart(s[0]) {
		return Ident
	}
	return Punct
}

// recursion returns the cycles in the call graph of f's functions, each as a path.
func (f *File) recursion() [][]string {
	var cycles [][]string
	state := map[string]int{} // 0 new, 1 on stack, 2 done
	var stack []string
	var visit func(string)
	visit = func(n string) {
		state[n] = 1
		stack = append(stack, n)
		calls := map[string]bool{}
		for _, fn := range f.byNm[n] {
			if fn.Macro {
				continue
			}
			for _, c := range fn.Calls {
				calls[c] = true
			}
		}
		names := make([]string, 0, len(calls))
		for c := range calls {
			names = append(names, c)
		}
		sort.Strings(names)
		for _, c := range names {
			if !f.isFunc(c) {
				continue
			}
			switch state[c] {
			case 0:
				visit(c)
			case 1:
				i := len(stack) - 1
				for stack[i] != c {
					i--
				}
				cyc := append(append([]string{}, stack[i:]...), c)
				cycles = append(cycles, cyc)
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = 2
	}
	for _, fn := range f.Funcs {
		if !fn.Macro && state[fn.Name] == 0 {
			visit(fn.Name)
		}
	}
	return cycles
}

func (f *File) isFunc(n string) bool {
	for _, fn := range f.byNm[n] {
		if !fn.Macro {
			return true
		}
	}
	return false
}
