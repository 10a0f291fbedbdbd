package msl

import (
	"fmt"
	"sort"
	"strings"
)

// Lint reports what g++ would compile but Apple's Metal compiler rejects (or reads
// differently), so the emulator never passes a kernel that fails on a Mac.
func (f *File) Lint() Errors {
	var errs Errors
	add := func(line int, format string, args ...any) {
		errs = append(errs, Error{f.Name, line, fmt.Sprintf(format, args...)})
	}
	// Token rules, over code and over macro bodies alike.
	check := func(toks []Token, lineBase int) {
		for i, t := range toks {
			line := t.Line + lineBase
			switch t.Kind {
			case Ident:
				switch t.Text {
				case "double":
					add(line, "double is not an MSL type; use float")
				case "new", "delete":
					add(line, "%s: MSL has no dynamic allocation", t.Text)
				case "try", "catch", "throw":
					add(line, "%s: MSL has no exceptions", t.Text)
				case "std":
					if next(toks, i) == "::" {
						add(line, "std:: does not exist in MSL; use the metal:: functions")
					}
				case "goto":
					add(line, "goto is not allowed in MSL")
				}
			case Number:
				if isF, suf := isFloatLiteral(t.Text); isF && !suf {
					add(line, "floating literal %s needs an f suffix (%sf): MSL reads it as float, C++ as double", t.Text, t.Text)
				}
			}
		}
	}
	var code []Token
	for _, t := range f.Toks {
		switch t.Kind {
		case Preproc:
			if m := defineRe.FindStringSubmatch(t.Text); m != nil {
				body, err := Lex(f.Name, t.Text[len(m[0]):])
				if err == nil {
					check(body, t.Line-1)
					for _, bt := range body {
						if bt.Kind == Ident && bt.Text == "kernel" {
							add(t.Line, "macro %s defines a kernel: the emulator's generator needs every kernel written out (kernel void NAME(...) {...})", m[1])
							break
						}
					}
				}
			}
		default:
			code = append(code, t)
		}
	}
	check(code, 0)

	// Pointers and references need an address space, in parameters and return types.
	for _, fn := range f.Funcs {
		if fn.Macro {
			continue
		}
		ps, err := f.Params(fn)
		if err != nil {
			if e, ok := err.(Error); ok {
				errs = append(errs, e)
			}
			continue
		}
		for _, p := range ps {
			if (p.Ptr || p.Ref) && p.Space == "" {
				add(p.Line, "parameter %s of %s is a pointer or reference without an address space (device, constant, threadgroup or thread); Apple's compiler rejects it", p.Name, fn.Name)
			}
		}
		hasSpace, hasPtr := false, false
		for j := fn.Start; j < fn.NameAt; j++ {
			s := f.text(j)
			if s == "[" && f.text(j+1) == "[" {
				j = f.match(j)
				continue
			}
			if addressSpaces[s] {
				hasSpace = true
			}
			if s == "*" || s == "&" {
				hasPtr = true
			}
		}
		if hasPtr && !hasSpace {
			add(fn.Line, "%s returns a pointer or reference without an address space; Apple's compiler rejects it", fn.Name)
		}
		if fn.Kernel {
			errs = append(errs, f.lintKernel(fn, ps)...)
		}
	}

	// Local pointer or reference declarations: `T* p = …;` at the start of a statement.
	for _, fn := range f.Funcs {
		if fn.Macro {
			continue
		}
		for ci := fn.LBrace + 1; ci < fn.RBrace; ci++ {
			if name, ok := f.localPointer(ci); ok {
				add(f.tok(ci).Line, "local %s is a pointer or reference without an address space (device, constant, threadgroup or thread); Apple's compiler rejects it", name)
			}
		}
	}

	for _, cyc := range f.recursion() {
		fn := f.byNm[cyc[0]][0]
		add(fn.Line, "recursion (%s): MSL does not allow recursive calls", strings.Join(cyc, " → "))
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	return errs
}

func next(toks []Token, i int) string {
	for j := i + 1; j < len(toks); j++ {
		if toks[j].Kind != Space && toks[j].Kind != Comment {
			return toks[j].Text
		}
	}
	return ""
}

// lintKernel checks a kernel's signature against the project's calling convention.
func (f *File) lintKernel(fn *Func, ps []Param) Errors {
	var errs Errors
	add := func(line int, format string, args ...any) {
		errs = append(errs, Error{f.Name, line, fmt.Sprintf(format, args...)})
	}
	if fn.Template {
		add(fn.Line, "kernel %s is a template; the emulator needs plain kernels (instantiate through a template helper)", fn.Name)
	}
	if f.text(fn.NameAt-1) != "void" {
		add(fn.Line, "kernel %s must return void", fn.Name)
	}
	seen := map[int]string{}
	for _, p := range ps {
		switch {
		case p.Attr == "":
			add(p.Line, "parameter %s of kernel %s has no attribute; bind it with [[buffer(i)]] or a thread attribute", p.Name, fn.Name)
		case strings.HasPrefix(p.Attr, "buffer("):
			idx, ok := bufferIndex(p.Attr)
			if !ok {
				add(p.Line, "cannot read [[%s]] on %s", p.Attr, p.Name)
				continue
			}
			if o, dup := seen[idx]; dup {
				add(p.Line, "buffer(%d) bound twice in kernel %s (%s and %s)", idx, fn.Name, o, p.Name)
			}
			seen[idx] = p.Name
			if !p.Ptr && !p.Ref {
				add(p.Line, "buffer parameter %s of kernel %s must be a pointer or reference", p.Name, fn.Name)
			}
			if p.Space == "threadgroup" {
				add(p.Line, "buffer parameter %s of kernel %s is in threadgroup memory", p.Name, fn.Name)
			}
		case strings.HasPrefix(p.Attr, "threadgroup("):
			add(p.Line, "threadgroup parameter %s of kernel %s: the calling convention (metal/driver) has static threadgroup memory only; declare the array inside the kernel", p.Name, fn.Name)
		default:
			if _, ok := builtins[p.Attr]; !ok {
				add(p.Line, "thread attribute [[%s]] on %s is not supported by the emulator", p.Attr, p.Name)
			}
		}
	}
	return errs
}

func bufferIndex(attr string) (int, bool) {
	s := strings.TrimSuffix(strings.TrimPrefix(attr, "buffer("), ")")
	n := 0
	if s == "" {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// notTypes are words that can start a statement before "x * y" without declaring anything.
var notTypes = map[string]bool{
	"return": true, "case": true, "goto": true, "else": true, "do": true, "delete": true,
	"throw": true, "sizeof": true, "typedef": true, "using": true, "co_return": true,
}

// localPointer matches a statement-initial declaration [const] T [const] (*|&) [const] name
// followed by =, ; or , — a pointer or reference declared without an address space.
func (f *File) localPointer(ci int) (string, bool) {
	if !f.statementStart(ci) {
		return "", false
	}
	j := ci
	if f.text(j) == "const" {
		j++
	}
	if f.tok(j).Kind != Ident || notTypes[f.text(j)] || addressSpaces[f.text(j)] || f.text(j) == "const" {
		return "", false
	}
	j++
	if f.text(j) == "const" {
		j++
	}
	if addressSpaces[f.text(j)] {
		return "", false
	}
	if f.text(j) != "*" && f.text(j) != "&" {
		return "", false
	}
	j++
	if f.text(j) == "const" {
		j++
	}
	if f.tok(j).Kind != Ident {
		return "", false
	}
	switch f.text(j + 1) {
	case "=", ";", ",":
		return f.text(j), true
	}
	return "", false
}
