package msl

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

var (
	swizzleRe = regexp.MustCompile(`^([xyzw]{2,4}|[rgba]{2,4})$`)
	includeRe = regexp.MustCompile(`^#\s*include\s*([<"])([^>"]*)[>"]`)
)

var swizzleIndex = map[byte]int{'x': 0, 'y': 1, 'z': 2, 'w': 3, 'r': 0, 'g': 1, 'b': 2, 'a': 3}

// Kernel is what the registry records about one kernel.
type Kernel struct {
	Name     string
	Line     int
	NBuf     int
	ArgsType string // C++ type of the buffer(0) struct, "" when buffer(0) is not a struct reference
	Blocking bool
	Params   []Param
	// MaxThreads is the n of [[max_total_threads_per_threadgroup(n)]] on the kernel, else 0.
	MaxThreads int
}

// maxThreads reads [[max_total_threads_per_threadgroup(n)]] among the kernel's attributes.
func (f *File) maxThreads(fn *Func) int {
	for j := fn.Start; j+3 < fn.NameAt; j++ {
		if f.text(j) == "max_total_threads_per_threadgroup" && f.text(j+1) == "(" {
			if n, err := strconv.Atoi(f.text(j + 2)); err == nil && f.text(j+3) == ")" {
				return n
			}
		}
	}
	return 0
}

// rewrite returns the C++ text of the file's code: attributes blanked, address-space words
// dropped (or turned into storage classes), swizzles made calls, MSL includes removed. Line
// structure is kept so #line 1 at the top maps every line back to the .metal file.
func (f *File) rewrite() (string, Errors) {
	var errs Errors
	var sb strings.Builder
	var pending []string // threadgroup names declared by the statement being copied
	limits := f.tgLimits()
	codePos := make(map[int]int, len(f.Code)) // token index → code index
	for ci, ti := range f.Code {
		codePos[ti] = ci
	}
	for ti := 0; ti < len(f.Toks); ti++ {
		t := f.Toks[ti]
		switch t.Kind {
		case Preproc:
			s, err := f.rewritePreproc(t)
			if err != nil {
				errs = append(errs, *err)
			}
			sb.WriteString(s)
			continue
		case Number:
			// MSL's half literal 1.5h has no C++ spelling: make it a converted float literal.
			if isF, suf := isFloatLiteral(t.Text); isF && suf && strings.ContainsAny(t.Text[len(t.Text)-1:], "hH") {
				sb.WriteString("((half)" + t.Text[:len(t.Text)-1] + "f)")
				continue
			}
			sb.WriteString(t.Text)
			continue
		case Space, Comment, String:
			sb.WriteString(t.Text)
			continue
		}
		ci := codePos[ti]
		switch {
		case t.Text == "[" && f.text(ci+1) == "[":
			e := f.match(ci)
			if e < 0 {
				errs = append(errs, Error{f.Name, t.Line, "unterminated [[ attribute"})
				sb.WriteString(t.Text)
				continue
			}
			// blank the attribute, keeping newlines
			for k := ti; k <= f.Code[e]; k++ {
				sb.WriteString(blank(f.Toks[k].Text))
			}
			ti = f.Code[e]
		case t.Kind == Ident && t.Text == "kernel":
			sb.WriteString(blank(t.Text))
		case t.Kind == Ident && addressSpaces[t.Text]:
			st := f.storage(ci)
			sb.WriteString(st)
			if st == "EMU_TLS" {
				pending = f.tgNames(ci)
			}
		case t.Kind == Punct && t.Text == ";" && pending != nil:
			// After the declaration, on the same line: give each array its per-group fill.
			sb.WriteString(";")
			for _, n := range pending {
				fmt.Fprintf(&sb, " EMU_TLS uint64_t %s__emu_epoch; emu_tg_fresh(%s, %s__emu_epoch);", n, n, n)
			}
			if lim, ok := limits[ci]; ok {
				sb.WriteString(lim)
			}
			pending = nil
		case t.Kind == Punct && t.Text == "." && swizzleRe.MatchString(f.text(ci+1)) && f.isMember(ci):
			sw := f.text(ci + 1)
			if isAssign(f.text(ci + 2)) {
				errs = append(errs, Error{f.Name, t.Line, fmt.Sprintf("assignment to swizzle .%s is not supported by the emulator; assign the components one by one", sw)})
			}
			idx := make([]string, len(sw))
			for k := range sw {
				idx[k] = strconv.Itoa(swizzleIndex[sw[k]])
			}
			sb.WriteString(".template swz<" + strings.Join(idx, ",") + ">()")
			ti = f.Code[ci+1]
		default:
			sb.WriteString(t.Text)
		}
	}
	return sb.String(), errs
}

// TGLimit is the threadgroup memory a kernel may declare on Apple GPUs
// (maxThreadgroupMemoryLength); Metal refuses to build a pipeline above it.
const TGLimit = 32768

// tgLimits maps the ";" ending the last threadgroup declaration in a kernel's outermost block
// to a static_assert that the kernel's threadgroup arrays fit in TGLimit bytes, so an
// oversized kernel fails to compile here as it fails to load on a Mac. (Arrays declared in
// nested blocks or in helpers are not counted.)
func (f *File) tgLimits() map[int]string {
	out := map[int]string{}
	for _, fn := range f.Funcs {
		if !fn.Kernel || fn.Macro {
			continue
		}
		var names []string
		last := -1
		depth := 0
		for ci := fn.LBrace; ci <= fn.RBrace; ci++ {
			switch f.text(ci) {
			case "{":
				depth++
			case "}":
				depth--
			case "threadgroup":
				if depth != 1 || f.storage(ci) != "EMU_TLS" {
					continue
				}
				names = append(names, f.tgNames(ci)...)
				for j := ci; j < fn.RBrace; j++ {
					if f.text(j) == ";" {
						last = j
						break
					}
				}
			}
		}
		if last < 0 {
			continue
		}
		sizes := make([]string, len(names))
		for i, n := range names {
			sizes[i] = "sizeof(" + n + ")"
		}
		out[last] = fmt.Sprintf(" static_assert(%s <= %d, \"kernel %s declares more threadgroup memory than the %d bytes Apple GPUs allow\");",
			strings.Join(sizes, " + "), TGLimit, fn.Name, TGLimit)
	}
	return out
}

// tgNames returns the names declared by the threadgroup storage declaration at code index ci:
// in each top-level comma-separated declarator, the last name before any "[".
func (f *File) tgNames(ci int) []string {
	var names []string
	last := ""
	depth := 0
	for j := ci + 1; j < len(f.Code); j++ {
		s := f.text(j)
		switch {
		case s == "[":
			depth++
		case s == "]":
			depth--
		case depth == 0 && (s == "," || s == ";"):
			if last != "" {
				names = append(names, last)
			}
			last = ""
			if s == ";" {
				return names
			}
		case depth == 0 && f.tok(j).Kind == Ident && !addressSpaces[s]:
			last = s
		}
	}
	return names
}

func isAssign(s string) bool {
	switch s {
	case "=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=", "++", "--":
		return true
	}
	return false
}

// isMember reports whether the "." at code index ci is member access (after a name, ")" or "]").
func (f *File) isMember(ci int) bool {
	if ci == 0 {
		return false
	}
	p := f.tok(ci - 1)
	return p.Kind == Ident || p.Text == ")" || p.Text == "]"
}

// storage rewrites an address-space word at code index ci. A statement-initial
// `threadgroup T name[…];` (no *, &, ( or = outside brackets) is threadgroup storage: one
// copy per threadgroup, which is a static thread_local (EMU_TLS) because a group's threads all
// run on one OS thread. A statement-initial `constant T name = …;` is a program-scope constant.
// Everywhere else the word qualifies a pointer or reference and C++ needs nothing.
func (f *File) storage(ci int) string {
	w := f.text(ci)
	if (w == "threadgroup" || w == "constant") && f.statementStart(ci) {
		plain := true
		depth := 0
	scan:
		for j := ci + 1; j < len(f.Code); j++ {
			switch s := f.text(j); s {
			case "[":
				depth++
			case "]":
				depth--
			case ";":
				break scan
			case "*", "&", "(":
				if depth == 0 {
					plain = false
					break scan
				}
			case "=":
				if depth == 0 && w == "threadgroup" {
					plain = false
					break scan
				}
				if w == "constant" {
					break scan
				}
			}
		}
		if plain {
			if w == "threadgroup" {
				return "EMU_TLS"
			}
			return "static const"
		}
	}
	return blank(w)
}

func (f *File) statementStart(ci int) bool {
	if ci == 0 {
		return true
	}
	switch f.text(ci - 1) {
	case ";", "{", "}":
		return true
	}
	return false
}

// rewritePreproc drops the MSL includes and applies the token rewrites to macro bodies.
func (f *File) rewritePreproc(t Token) (string, *Error) {
	if m := includeRe.FindStringSubmatch(t.Text); m != nil {
		if m[1] == "<" && strings.HasPrefix(m[2], "metal_") {
			return "// " + t.Text, nil // emu.h provides the MSL library
		}
		return t.Text, &Error{f.Name, t.Line, fmt.Sprintf("#include %q: the Metal backend compiles each file from source with no include path; keep files self-contained", m[2])}
	}
	m := defineRe.FindStringSubmatch(t.Text)
	if m == nil {
		return t.Text, nil
	}
	head, body := t.Text[:len(m[0])], t.Text[len(m[0]):]
	sub, err := Parse(f.Name, body)
	if err != nil {
		return t.Text, nil
	}
	out, errs := sub.rewrite()
	if len(errs) > 0 {
		e := errs[0]
		e.Line += t.Line - 1
		return t.Text, &e
	}
	return head + out, nil
}

func blank(s string) string {
	var sb strings.Builder
	for _, c := range s {
		if c == '\n' || c == '\r' {
			sb.WriteRune(c)
		} else if c == '\\' {
			sb.WriteRune(c)
		} else {
			sb.WriteByte(' ')
		}
	}
	return sb.String()
}

// Kernels lists the file's kernels with their bindings.
func (f *File) Kernels() ([]Kernel, Errors) {
	var out []Kernel
	var errs Errors
	for _, fn := range f.Funcs {
		if !fn.Kernel || fn.Macro {
			continue
		}
		ps, err := f.Params(fn)
		if err != nil {
			errs = append(errs, err.(Error))
			continue
		}
		k := Kernel{Name: fn.Name, Line: fn.Line, Blocking: f.Blocking(fn), Params: ps, MaxThreads: f.maxThreads(fn)}
		for _, p := range ps {
			if idx, ok := bufferIndex(p.Attr); ok && strings.HasPrefix(p.Attr, "buffer(") {
				if idx+1 > k.NBuf {
					k.NBuf = idx + 1
				}
				if idx == 0 && p.Ref && !p.Ptr {
					k.ArgsType = strings.Join(stripConst(p.Type), " ")
				}
			}
		}
		out = append(out, k)
	}
	return out, errs
}

func stripConst(ts []string) []string {
	var out []string
	for _, s := range ts {
		if s != "const" && s != "volatile" {
			out = append(out, s)
		}
	}
	return out
}

// wrapper writes the C++ function that binds a kernel's parameters to buffers and built-ins.
func wrapper(k Kernel) string {
	var args []string
	for _, p := range k.Params {
		typ := strings.Join(p.Type, " ")
		if idx, ok := bufferIndex(p.Attr); ok && strings.HasPrefix(p.Attr, "buffer(") {
			if p.Ptr {
				args = append(args, fmt.Sprintf("(%s)b[%d]", typ, idx))
			} else {
				args = append(args, fmt.Sprintf("*(%s*)b[%d]", typ, idx))
			}
			continue
		}
		bi := builtins[p.Attr]
		if bi.vector {
			// emu_bi dispatches on the bare vector type: `const uint3` would not match.
			args = append(args, fmt.Sprintf("emu_bi<%s>(%s)", strings.Join(stripConst(p.Type), " "), bi.expr))
		} else {
			args = append(args, fmt.Sprintf("(%s)(%s)", typ, bi.expr))
		}
	}
	return fmt.Sprintf("static void %s__emu(void* const* b, const emu_ids* id) {\n\t(void)b;\n\temu_cur_lane = id->lane;\n\temu_cur_epoch = id->epoch;\n\t%s(%s);\n}\n",
		k.Name, k.Name, strings.Join(args, ", "))
}
